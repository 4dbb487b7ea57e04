"""One configuration and seed of the ablation: train to a plateau, evaluate, run the controls, write jsons.

Files (``results`` = ``figures/ablation/<preset>/`` by default; compact, meant to be committed):

* ``<name>_s<seed>.json``: recipe hash, poseval AP table of the final model, per-video AP and subset
  AP (:mod:`ftp_pose.experiments.evalsets`), the validation curve, epochs run, GFLOPs, speed after
  training, training time, machine.
* ``controls/<name>_s<seed>.json`` (multigrained and ftp_pose eps 6/6): the same scores for
  ``key_frame_only`` and, for ftp_pose, ``random_pruning`` and ``no_pruning``.
* ``test_time/<name>_s<seed>.json`` (ftp_pose eps 6/6): the same scores at every (eps_h, eps_l) of
  Table III, the trained weights unchanged.

A json whose recipe hash matches is reused; training checkpoints live in ``<out>/train/`` (``runs/``,
not committed). The controls and the sweep run right after training, while the model is loaded, so
a seed's results are complete when its jsons land.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from ftp_pose.io import read_json, write_json

EVAL_VERSION = 2   #: bump when what is stored per run changes meaning (old jsons are then re-run)
EPS = (1, 3, 6, 10)
CONTROLS = {"multigrained": ("key_frame_only",),
            "ftp_pose_h6_l6": ("key_frame_only", "random_pruning", "no_pruning")}
SWEEP_SOURCE = "ftp_pose_h6_l6"


def log(msg: str) -> None:
    print(f"[ablate {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_progress_bars():
    """Silence the tqdm bars of training / inference (``tqdm.auto.tqdm``, looked up at call time)."""
    import tqdm.auto as tqdm_auto

    original = tqdm_auto.tqdm

    class _Quiet(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    tqdm_auto.tqdm = _Quiet
    try:
        yield
    finally:
        tqdm_auto.tqdm = original


def _holder_alive(text: str) -> bool:
    """Whether the claim text ``"<host> <pid>"`` names a process that still runs on this machine."""
    try:
        host, pid = text.split()
        pid_i = int(pid)
    except ValueError:
        return False   # unreadable claim: treat as stale
    if host != socket.gethostname():
        return True    # another machine's claim (shared disk): leave it alone
    try:
        os.kill(pid_i, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def claim(path: Path):
    """Claim one job for this process; yields ``True`` if held, ``False`` if a live process holds it.

    Lets several ``ablate`` processes (one per core) share one job list: each creates
    ``<out>/claims/<job>.claim`` atomically (``O_EXCL``) with its host and pid before training and
    removes it after. A claim whose process is gone (killed run) is taken over.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue   # released meanwhile: try again
            if _holder_alive(text):
                yield False
                return
            log(f"stale claim {path.name} ({text.strip()}): taking it over")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        try:
            yield True
        finally:
            path.unlink(missing_ok=True)
        return
    yield False


def train_values(preset: dict[str, Any], conf: dict[str, Any], seed: int, out: Path) -> dict[str, Any]:
    values = copy.deepcopy(preset["train"])
    values["model"].update(name=conf["variant"], eps_h=conf["eps_h"], eps_l=conf["eps_l"])
    values["seed"] = int(seed)
    syn = preset.get("synthetic")
    if syn is not None:
        root = out / "data"
        values["data"].update(train_ann=str(root / "annotations" / "train.json"), train_images=str(root),
                              val_ann=str(root / "annotations" / "val.json"), val_images=str(root),
                              synthetic=dict(copy.deepcopy(syn), out_dir=str(root)))
    return values


def val_clips(val_set: Any, bench: dict[str, Any]) -> Any:
    """The first ``throughput_batch`` val clips, stacked: ``n x T x 3 x H x W``."""
    import torch

    n = min(len(val_set), int(bench["throughput_batch"]))
    return torch.stack([torch.as_tensor(val_set[i]["clip"]) for i in range(n)])


def time_model(model: Any, clips: Any, bench: dict[str, Any]) -> tuple[float, float]:
    """``(latency ms at batch 1, clips/s at batch len(clips))``, medians over the preset's repeats."""
    from ftp_pose.bench import time_forward

    lat = statistics.median(time_forward(model, clips[:1], bench["warmup"], bench["repeats"], amp=False))
    thr = statistics.median(time_forward(model, clips, bench["warmup"], bench["repeats"], amp=False))
    return round(lat, 3), round(1000.0 * len(clips) / thr, 2)


def gflops(model: Any, clip: Any) -> float:
    from ftp_pose.bench import count_flops

    return round(count_flops(model, clip)[0] / 1e9, 4)


def _curve(run_dir: Path) -> list[dict[str, Any]]:
    """Per epoch: the last logged training loss and the validation mean AP (when validated)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    by_epoch: dict[int, dict[str, Any]] = {}
    for r in rows:
        e = int(r["epoch"])
        d = by_epoch.setdefault(e, {"epoch": e})
        if r["kind"] == "train" and r.get("loss"):
            d["loss"] = round(float(r["loss"]), 6)
        elif r["kind"] == "val" and r.get("ap_mean"):
            d["mean_ap"] = round(float(r["ap_mean"]), 3)
    return [by_epoch[e] for e in sorted(by_epoch)]


def _valid(path: Path, rh: str) -> dict | None:
    if not path.is_file():
        return None
    r = read_json(path)
    return r if r.get("recipe_hash") == rh and r.get("eval_version") == EVAL_VERSION else None


def run_config(preset_name: str, preset: dict[str, Any], rh: str, conf: dict[str, Any], seed: int, out: Path,
               results: Path, sweep: bool = True) -> dict[str, Any]:
    """Train + evaluate one configuration and seed, then its controls / sweep; returns the main record
    with ``cached`` (bool: nothing was trained)."""
    import torch

    from ftp_pose.bench import device_name
    from ftp_pose.engine.builders import build_dataset, build_model_from_config, ensure_synthetic
    from ftp_pose.engine.config import config_from_dict
    from ftp_pose.engine.train import train
    from ftp_pose.experiments import controls

    key = f"{conf['name']}_s{seed}"
    main_path = results / f"{key}.json"
    ctrl_path = results / "controls" / f"{key}.json"
    sweep_path = results / "test_time" / f"{key}.json"
    want_ctrl = conf["name"] in CONTROLS
    want_sweep = sweep and conf["name"] == SWEEP_SOURCE
    record = _valid(main_path, rh)
    if record is not None and (not want_ctrl or _valid(ctrl_path, rh)) and (not want_sweep or _valid(sweep_path, rh)):
        log(f"{key}: cached ({main_path})")
        return {**record, "cached": True}

    run_dir = out / "train" / f"{key}_{rh}"
    cfg = config_from_dict(train_values(preset, conf, seed, out), f"ablate preset {preset_name}")
    cfg.out_dir = str(run_dir)
    ensure_synthetic(cfg)
    train_set, val_set = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    model = build_model_from_config(cfg)
    t0 = time.perf_counter()
    resumed = (run_dir / "last.pt").is_file()
    if record is not None and not resumed:
        log(f"{key}: result json present but its controls/sweep are missing and there is no checkpoint "
            f"({run_dir / 'last.pt'}): retraining to get them")
    log(f"{key}: training {conf['variant']} eps_h={conf['eps_h']} eps_l={conf['eps_l']} seed {seed}, "
        f"up to {cfg.optim.epochs} epochs x {len(train_set) // cfg.batch_size} iters"
        f"{' (resuming)' if resumed else ''} -> {run_dir}")
    with quiet_progress_bars():
        result = train(cfg, resume=True, model=model, train_set=train_set, val_set=val_set)
    train_s = time.perf_counter() - t0
    prev = read_json(run_dir / "ablate_time.json").get("train_s", 0.0) if (resumed and (run_dir / "ablate_time.json").is_file()) else 0.0
    train_s_total = round(train_s + prev, 1)
    write_json(run_dir / "ablate_time.json", {"train_s": train_s_total})
    model.eval()
    device = next(model.parameters()).device
    base = {"name": conf["name"], "variant": conf["variant"], "eps_h": conf["eps_h"], "eps_l": conf["eps_l"],
            "seed": seed, "preset": preset_name, "recipe_hash": rh, "eval_version": EVAL_VERSION,
            "device": device_name(device), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if record is None:
        t1 = time.perf_counter()
        scores = controls.evaluate_variant(model, val_set, cfg, run_dir / "eval_final")
        eval_s = time.perf_counter() - t1
        clips = val_clips(val_set, preset["bench"]).to(device)
        lat, cps = time_model(model, clips, preset["bench"])
        record = {**base, **scores,
                  "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 4),
                  "gflops": gflops(model, clips[:1]), "latency_ms": lat, "clips_per_s": cps,
                  "throughput_batch": len(clips),
                  "epochs_run": int(result["epoch"]), "epoch_cap": cfg.optim.epochs,
                  "stopped_on_plateau": bool(result.get("stopped_on_plateau")),
                  "curve": _curve(run_dir), "train_s": train_s_total, "eval_s": round(eval_s, 1),
                  "resumed": resumed}
        if preset.get("synthetic") is not None:
            from ftp_pose.data.synthetic import perturbation_shares

            record["perturbation_shares"] = perturbation_shares(cfg.data.val_ann)
        write_json(main_path, record)
        log(f"{key}: mean AP {record['ap']['Mean']:.2f} after {record['epochs_run']} epochs "
            f"({'plateau' if record['stopped_on_plateau'] else 'cap'}), {record['gflops']:.3f} GFLOPs, "
            f"trained in {train_s_total:.0f} s")
    if want_ctrl and _valid(ctrl_path, rh) is None:
        variants = {}
        for v in CONTROLS[conf["name"]]:
            t1 = time.perf_counter()
            variants[v] = controls.evaluate_variant(model, val_set, cfg, run_dir / f"eval_{v}", v, seed=seed)
            variants[v]["eval_s"] = round(time.perf_counter() - t1, 1)
            log(f"{key}: control {v}: mean AP {variants[v]['ap']['Mean']:.2f}")
        write_json(ctrl_path, {**base, "controls": variants})
    if want_sweep and _valid(sweep_path, rh) is None:
        cells = {}
        clip = val_clips(val_set, {"throughput_batch": 1}).to(device)
        for el in EPS:
            for eh in EPS:
                res = controls.evaluate_variant(model, val_set, cfg, run_dir / f"eval_h{eh}_l{el}", eps=(eh, el))
                model.set_pruning(eh, el)
                res["gflops"] = gflops(model, clip)
                model.set_pruning(conf["eps_h"], conf["eps_l"])
                cells[f"h{eh}_l{el}"] = {"eps_h": eh, "eps_l": el, **res}
            log(f"{key}: test-time sweep eps_l={el} done")
        write_json(sweep_path, {**base, "cells": cells})
    return {**record, "cached": False}
