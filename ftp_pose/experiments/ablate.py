"""Ablations by experiment: ``python -m ftp_pose ablate --table 2|3 [--preset cpu|gpu|quick] [--seeds N]``.

Trains and evaluates every configuration of the paper's Table II (baseline, multigrained (a),
ftp_pose (b) with eps 6/6) or Table III (ftp_pose over eps_h x eps_l) with one shared recipe (the
preset), on the synthetic ablation benchmark (``ftp_pose.data.synthetic.ABLATION_BENCHMARK``:
small people, one-frame occlusions and blur, limb-like clutter, left/right from the view instead
of colour, so flips are valid) for the CPU presets, or on PoseTrack 2017 for ``gpu``.

Per configuration and seed: one training run (``<out>/train/<config>_s<seed>_<recipe>/``,
resumable from its ``last.pt``), then the AP table of the final model on the val set, its GFLOPs
(``ftp_pose.bench.count_flops``, one clip) and its measured inference speed on val clips
(``ftp_pose.bench.time_forward``: latency at batch 1 and clips/s at the throughput batch, on the
training device, after training). The result is written atomically to
``<out>/results/<config>_s<seed>.json``; a configuration whose json exists (with the same recipe
hash) is skipped, so a killed or repeated run resumes where it stopped. ftp_pose with eps 6/6 is
one configuration shared by both tables. On a shared machine the after-training speed is noisy;
``--remeasure-speed R`` re-times all configurations back to back, interleaved over R rounds
(:func:`remeasure_speed`, ``<out>/speed.json``), and the tables then use those medians.

Outputs (in ``ftp_pose.paths.figures_dir()``, i.e. ``$FTP_POSE_FIGURES`` or ``figures/``):
``table2.{md,json}``, ``table3.{md,json}``, ``table3.png`` (our grid beside the paper's). Missing
results (not run yet, or ``--no-train``) are written as ``n/a`` and listed under ``missing``.
Progress goes to stderr: a line per configuration and per epoch.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from ftp_pose.data.synthetic import ABLATION_BENCHMARK
from ftp_pose.io import read_json, write_json, write_text

__all__ = ["PRESETS", "TABLE3_GRIDS", "configurations", "run_ablation", "remeasure_speed", "write_tables",
           "add_cli_arguments", "run_cli"]

AP_COLUMNS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")
EPS = (1, 3, 6, 10)

#: Table III cells per grid name: (eps_h, eps_l)
TABLE3_GRIDS: dict[str, tuple[tuple[int, int], ...]] = {
    "full": tuple((eh, el) for el in EPS for eh in EPS),
    # the cross through (6, 6): every HRB ratio at eps_l = 6, every LRB ratio at eps_h = 6 (7 cells)
    "cross": tuple([(eh, 6) for eh in EPS] + [(6, el) for el in EPS if el != 6]),
    "corners": ((1, 1), (6, 1), (1, 6), (6, 6)),
}

#: the synthetic ablation benchmark's generator options (see ftp_pose.data.synthetic's docstring)
_BENCH_SYNTH = dict(ABLATION_BENCHMARK)


def _synthetic_recipe(n_videos: int, n_val: int, n_frames: int, size: tuple[int, int],
                      people: tuple[int, int]) -> dict[str, Any]:
    return dict(n_videos=n_videos, n_frames=n_frames, seed=0,
                options=dict(n_val_videos=n_val, size=list(size), people_per_frame=list(people), **_BENCH_SYNTH))


#: preset -> {"train": TrainConfig values (data paths filled in per run), "bench": speed settings,
#:            "table3_grid": default Table III cells, "note": what it is}
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "note": "smoke test: a 1-block width-32 model, 64x48 crops, 1 epoch on 3 tiny videos (numbers meaningless)",
        "synthetic": _synthetic_recipe(3, 1, 4, (128, 96), (1, 1)),
        "train": {
            "model": {"backbone": "tiny",
                      "overrides": dict(embed_dim=32, num_heads=2, depth=1, lrb_depth=1, refine_depth=1)},
            "data": {"input_size": [64, 48], "heatmap_size": [16, 12], "sigma": 1.0, "offsets": [-1, 1],
                     "aug": {"flip": True, "rotation_factor": 20.0, "half_body_prob": 0.0}},
            "optim": {"epochs": 1, "lr": 1e-3, "lr_steps": [1], "warmup_iters": 2, "weight_decay": 0.05,
                      "layer_decay": 1.0},
            "batch_size": 4, "workers": 0, "amp": "off", "eval_every": 1, "flip_test": True, "log_every": 1000,
        },
        "bench": {"warmup": 0, "repeats": 1, "throughput_batch": 2},
        "table3_grid": "corners",
    },
    "cpu": {
        "note": ("CPU recipe on the synthetic ablation benchmark: tiny ViT (width 96, 2+1+1 blocks), "
                 "128x96 crops, 32 train + 8 val videos x 8 frames of 256x192, flips on, 8 epochs of batch 8; "
                 "sized so that Table II x 3 seeds + the Table III cross fit in about an hour on one "
                 "shared CPU thread"),
        "synthetic": _synthetic_recipe(32, 8, 8, (256, 192), (1, 2)),
        "train": {
            "model": {"backbone": "tiny",
                      "overrides": dict(embed_dim=96, num_heads=4, depth=2, lrb_depth=1, refine_depth=1)},
            "data": {"input_size": [128, 96], "heatmap_size": [32, 24], "sigma": 1.5, "offsets": [-1, 1],
                     "aug": {"flip": True, "rotation_factor": 30.0, "half_body_prob": 0.0}},
            "optim": {"epochs": 8, "lr": 1.5e-3, "lr_steps": [7], "lr_factor": 0.1, "warmup_iters": 50,
                      "weight_decay": 0.05, "layer_decay": 1.0, "grad_clip": 1.0},
            "batch_size": 8, "workers": 0, "amp": "off", "eval_every": 8, "flip_test": True,
            "log_every": 20,
        },
        "bench": {"warmup": 3, "repeats": 10, "throughput_batch": 16},
        "table3_grid": "cross",
    },
    "gpu": {
        "note": "the paper's recipe on PoseTrack 2017 (configs/ftp_pose.yaml): ViT-B, 256x192, 20 epochs",
        "synthetic": None,
        "train": {
            "model": {"backbone": "base"},
            "data": {"train_ann": "data/posetrack17/annotations/train", "train_images": "data/posetrack17",
                     "val_ann": "data/posetrack17/annotations/val", "val_images": "data/posetrack17",
                     "input_size": [256, 192], "heatmap_size": [64, 48], "sigma": 2.0, "offsets": [-1, 1]},
            "optim": {"epochs": 20, "lr": 5e-4, "lr_steps": [16], "lr_factor": 0.1, "warmup_iters": 500,
                      "weight_decay": 0.1, "layer_decay": 0.75, "grad_clip": 1.0},
            "batch_size": 32, "workers": 8, "amp": "auto", "eval_every": 20, "flip_test": True, "log_every": 50,
        },
        "bench": {"warmup": 10, "repeats": 50, "throughput_batch": 32},
        "table3_grid": "full",
    },
}


def configurations(table: int, grid: str = "full") -> list[dict[str, Any]]:
    """The configurations of Table II or III: ``[{"name", "variant", "eps_h", "eps_l"}, ...]``."""
    if table == 2:
        return [dict(name="baseline", variant="baseline", eps_h=None, eps_l=None),
                dict(name="multigrained", variant="multigrained", eps_h=None, eps_l=None),
                dict(name="ftp_pose_h6_l6", variant="ftp_pose", eps_h=6, eps_l=6)]
    if table == 3:
        if grid not in TABLE3_GRIDS:
            raise ValueError(f"unknown Table III grid {grid!r}; choose one of {sorted(TABLE3_GRIDS)}")
        return [dict(name=f"ftp_pose_h{eh}_l{el}", variant="ftp_pose", eps_h=eh, eps_l=el)
                for eh, el in TABLE3_GRIDS[grid]]
    raise ValueError(f"--table must be 2 or 3, got {table}")


# ----------------------------------------------------------------------------- one configuration

@contextlib.contextmanager
def _quiet_progress_bars():
    """Silence the tqdm bars of training / inference (``tqdm.auto.tqdm``, looked up at call time) so that
    stderr gets one line per configuration and epoch; restored on exit."""
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


def _log(msg: str) -> None:
    print(f"[ablate {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _train_values(preset: dict[str, Any], conf: dict[str, Any], seed: int, out: Path) -> dict[str, Any]:
    values = copy.deepcopy(preset["train"])
    values["model"]["name"] = conf["variant"]
    values["model"]["eps_h"] = conf["eps_h"]
    values["model"]["eps_l"] = conf["eps_l"]
    values["seed"] = int(seed)
    syn = preset.get("synthetic")
    if syn is not None:
        root = out / "data"
        values["data"].update(train_ann=str(root / "annotations" / "train.json"), train_images=str(root),
                              val_ann=str(root / "annotations" / "val.json"), val_images=str(root),
                              synthetic=dict(copy.deepcopy(syn), out_dir=str(root)))
    return values


def recipe_hash(preset: dict[str, Any]) -> str:
    """Short hash of everything in a preset that changes results (not paths): cached results must match it."""
    blob = json.dumps({k: preset.get(k) for k in ("synthetic", "train", "bench")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _val_clips(val_set: Any, bench: dict[str, Any]) -> Any:
    """The first ``throughput_batch`` val clips, stacked: ``n x T x 3 x H x W``."""
    import torch

    n = min(len(val_set), int(bench["throughput_batch"]))
    return torch.stack([torch.as_tensor(val_set[i]["clip"]) for i in range(n)])


def _time(model: Any, clips: Any, bench: dict[str, Any]) -> tuple[float, float]:
    """``(latency ms at batch 1, clips/s at batch len(clips))``, medians over the preset's repeats."""
    from ftp_pose.bench import time_forward

    lat = statistics.median(time_forward(model, clips[:1], bench["warmup"], bench["repeats"], amp=False))
    thr = statistics.median(time_forward(model, clips, bench["warmup"], bench["repeats"], amp=False))
    return round(lat, 3), round(1000.0 * len(clips) / thr, 2)


def _measure(model: Any, val_set: Any, bench: dict[str, Any], device: Any) -> dict[str, Any]:
    """GFLOPs (one clip) and inference speed of ``model`` on real val clips."""
    from ftp_pose.bench import count_flops

    model.eval()
    clips = _val_clips(val_set, bench).to(device)
    flops, _ = count_flops(model, clips[:1])
    lat, clips_per_s = _time(model, clips, bench)
    return {"params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 4),
            "gflops": round(flops / 1e9, 4), "latency_ms": lat,
            "clips_per_s": clips_per_s, "throughput_batch": len(clips)}


def run_config(preset_name: str, conf: dict[str, Any], seed: int, out: Path) -> dict[str, Any]:
    """Train + evaluate + measure one configuration and seed (cached in ``<out>/results``)."""
    import torch

    from ftp_pose.bench import device_name
    from ftp_pose.engine.builders import build_dataset, build_model_from_config, ensure_synthetic
    from ftp_pose.engine.checkpoint import load_checkpoint
    from ftp_pose.engine.config import config_from_dict
    from ftp_pose.engine.train import train

    preset = PRESETS[preset_name]
    rh = recipe_hash(preset)
    key = f"{conf['name']}_s{seed}"
    res_path = out / "results" / f"{key}.json"
    if res_path.is_file():
        cached = read_json(res_path)
        if cached.get("recipe_hash") == rh:
            _log(f"{key}: cached ({res_path})")
            return {**cached, "cached": True}
        _log(f"{key}: cached result has another recipe ({cached.get('recipe_hash')} != {rh}); re-running")
    run_dir = out / "train" / f"{key}_{rh}"
    cfg = config_from_dict(_train_values(preset, conf, seed, out), f"ablate preset {preset_name}")
    cfg.out_dir = str(run_dir)
    ensure_synthetic(cfg)
    train_set, val_set = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    model = build_model_from_config(cfg)
    iters = len(train_set) // cfg.batch_size
    t0 = time.perf_counter()
    resumed = (run_dir / "last.pt").is_file()
    _log(f"{key}: training {conf['variant']} eps_h={conf['eps_h']} eps_l={conf['eps_l']} seed {seed}, "
         f"{cfg.optim.epochs} epochs x {iters} iters{' (resuming)' if resumed else ''} -> {run_dir}")
    with _quiet_progress_bars():  # train() itself prints one line per epoch (loss, time)
        result = train(cfg, resume=True, model=model, train_set=train_set, val_set=val_set)
    train_s = time.perf_counter() - t0
    metrics = result["metrics"] or load_checkpoint(run_dir / "last.pt", map_location="cpu").get("metrics", {})
    ap = {c: float(metrics[c]) for c in AP_COLUMNS if c in metrics}
    device = next(model.parameters()).device
    speed = _measure(model, val_set, preset["bench"], device)
    prev_time = None
    if resumed and (run_dir / "ablate_time.json").is_file():
        prev_time = read_json(run_dir / "ablate_time.json").get("train_s")
    record = {
        "name": conf["name"], "variant": conf["variant"], "eps_h": conf["eps_h"], "eps_l": conf["eps_l"],
        "seed": seed, "preset": preset_name, "recipe_hash": rh, "ap": ap, **speed,
        "train_s": round(train_s + (prev_time or 0.0), 1), "resumed": resumed,
        "device": device_name(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "epochs": cfg.optim.epochs, "run_dir": str(run_dir), "config": cfg.to_dict(),
    }
    write_json(run_dir / "ablate_time.json", {"train_s": record["train_s"]})
    write_json(res_path, record)
    _log(f"{key}: mean AP {ap.get('Mean', float('nan')):.2f}, {speed['gflops']:.3f} GFLOPs, "
         f"{speed['clips_per_s']:.1f} clips/s, trained in {train_s:.0f} s")
    return {**record, "cached": False}


def remeasure_speed(tables: list[int], preset_name: str, out: Path, grid: str | None = None,
                    rounds: int = 5) -> dict[str, Any]:
    """Re-time every configuration of ``tables`` back to back, interleaved over ``rounds`` rounds.

    The speed measured right after each training depends on what else the (shared) machine was doing
    at that moment; here each round times every configuration once (seed-0 checkpoint, the same val
    clips), and the median over rounds is kept, so a load change hits all configurations alike.
    Written to ``<out>/speed.json``; :func:`write_tables` prefers it to the after-training numbers.
    """
    import torch

    from ftp_pose.bench import count_flops, device_name
    from ftp_pose.engine.builders import build_dataset
    from ftp_pose.engine.checkpoint import model_from_checkpoint

    preset = PRESETS[preset_name]
    rh = recipe_hash(preset)
    grid = grid or preset["table3_grid"]
    confs = {c["name"]: c for t in tables for c in configurations(t, grid)}
    bench = preset["bench"]
    models, clips = {}, None
    for name in confs:
        ckpt = out / "train" / f"{name}_s0_{rh}" / "last.pt"
        if not ckpt.is_file():
            _log(f"speed: {name}: no seed-0 checkpoint ({ckpt}), skipped")
            continue
        models[name], cfg = model_from_checkpoint(ckpt, "cpu")
        if clips is None:
            clips = _val_clips(build_dataset(cfg, "val"), bench)
    per: dict[str, dict[str, list[float]]] = {n: {"latency_ms": [], "clips_per_s": []} for n in models}
    for r in range(rounds):
        for name, model in models.items():
            lat, clips_per_s = _time(model, clips, bench)
            per[name]["latency_ms"].append(lat)
            per[name]["clips_per_s"].append(clips_per_s)
        _log(f"speed: round {r + 1}/{rounds} done")
    result = {"recipe_hash": rh, "device": device_name(torch.device("cpu")), "threads": torch.get_num_threads(),
              "rounds": rounds, "throughput_batch": 0 if clips is None else len(clips),
              "method": "seed-0 checkpoints, all configurations timed once per round, median over rounds",
              "configs": {n: {"latency_ms": statistics.median(v["latency_ms"]),
                              "clips_per_s": statistics.median(v["clips_per_s"]),
                              "gflops": round(count_flops(models[n], clips[:1])[0] / 1e9, 4),
                              "latency_ms_rounds": v["latency_ms"], "clips_per_s_rounds": v["clips_per_s"]}
                          for n, v in per.items()}}
    old = read_json(out / "speed.json") if (out / "speed.json").is_file() else {}
    if old.get("recipe_hash") == rh:   # keep configurations of the other table
        result["configs"] = {**old.get("configs", {}), **result["configs"]}
    write_json(out / "speed.json", result)
    return result


# ----------------------------------------------------------------------------- tables

def _mean_std(vals: list[float]) -> tuple[float | None, float | None]:
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _aggregate(conf: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {k: conf[k] for k in ("name", "variant", "eps_h", "eps_l")}
    row["seeds"] = [r["seed"] for r in records]
    row["n_seeds"] = len(records)
    row["ap"] = {c: _mean_std([r["ap"][c] for r in records if c in r["ap"]])[0] for c in AP_COLUMNS}
    row["ap_std"] = {c: _mean_std([r["ap"][c] for r in records if c in r["ap"]])[1] for c in AP_COLUMNS}
    row["map_per_seed"] = [r["ap"].get("Mean") for r in records]
    for k in ("params_m", "gflops", "latency_ms", "clips_per_s", "train_s"):
        m, s = _mean_std([float(r[k]) for r in records if r.get(k) is not None])
        row[k] = None if m is None else round(m, 4)
        if k in ("clips_per_s", "train_s"):
            row[f"{k}_std"] = None if s is None else round(s, 4)
    return row


def _fmt(v: Any, f: str = ".1f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, f)


def _pm(m: Any, s: Any, f: str = ".1f") -> str:
    if m is None:
        return "n/a"
    return f"{format(m, f)} ± {format(s, f)}" if s else format(m, f)


def _compare(rows: dict[str, dict], a: str, b: str, op: str) -> dict[str, Any]:
    """Direction check ``rows[a] op rows[b]`` on the mean AP (with the seed spread)."""
    ra, rb = rows.get(a), rows.get(b)
    if not ra or not rb or ra["ap"]["Mean"] is None or rb["ap"]["Mean"] is None:
        return {"holds": None, "delta": None}
    d = ra["ap"]["Mean"] - rb["ap"]["Mean"]
    spread = math.hypot(ra["ap_std"]["Mean"] or 0.0, rb["ap_std"]["Mean"] or 0.0)
    holds = d > 0 if op == ">" else d >= 0
    return {"holds": holds, "delta": round(d, 3), "seed_spread": round(spread, 3),
            "beyond_spread": abs(d) > spread if min(ra["n_seeds"], rb["n_seeds"]) > 1 else None}


def _device_line(records: list[dict]) -> str:
    devs = sorted({f"{r['device']} ({r['threads']} thread{'s' if r['threads'] != 1 else ''})" for r in records})
    return "; ".join(devs) or "n/a"


def write_tables(table: int, preset_name: str, seeds: list[int], out: Path, grid: str | None = None,
                 figures: Path | None = None) -> dict[str, Any]:
    """Write ``table<N>.{md,json}`` (and ``table3.png``) from the cached results; missing cells are n/a."""
    from ftp_pose.paths import figures_dir
    from ftp_pose.viz import paper_tables as paper

    preset = PRESETS[preset_name]
    grid = grid or preset["table3_grid"]
    confs = configurations(table, grid)
    rh = recipe_hash(preset)
    figures = figures or figures_dir()
    rows, missing, all_records = {}, [], []
    for conf in confs:
        recs = []
        for s in seeds:
            p = out / "results" / f"{conf['name']}_s{s}.json"
            r = read_json(p) if p.is_file() else None
            if r is None or r.get("recipe_hash") != rh:
                missing.append(f"{conf['name']}_s{s}")
            else:
                recs.append(r)
        all_records += recs
        rows[conf["name"]] = _aggregate(conf, recs)
    speed = read_json(out / "speed.json") if (out / "speed.json").is_file() else {}
    speed = speed if speed.get("recipe_hash") == rh else {}
    for name, r in rows.items():
        r["speed_source"] = "after training (mean over seeds)"
        sp = speed.get("configs", {}).get(name)
        if sp:
            r["clips_per_s_after_training"], r["latency_ms_after_training"] = r["clips_per_s"], r["latency_ms"]
            r["clips_per_s"], r["latency_ms"] = sp["clips_per_s"], sp["latency_ms"]
            r["clips_per_s_rounds"] = sp["clips_per_s_rounds"]
            r["speed_source"] = f"interleaved re-measurement ({speed['rounds']} rounds, median)"
    header = {"table": table, "preset": preset_name, "preset_note": preset["note"], "recipe_hash": rh,
              "seeds": seeds, "device": _device_line(all_records), "missing": missing,
              "complete": not missing, "cache": str(out), "recipe": {k: preset.get(k) for k in ("synthetic", "train", "bench")},
              "speed_note": ("clips/s: inference at the throughput batch on val clips, latency: batch 1, on the "
                             "training device; "
                             + (f"from {out / 'speed.json'}: {speed.get('method')} ({speed.get('rounds')} rounds)"
                                if speed else "measured right after each training (a shared machine: noisy)")),
              "paper_source": paper.CITATION}
    if table == 2:
        names = {"baseline": "baseline", "multigrained": "multigrained", "ftp_pose_h6_l6": "ftp_pose"}
        for n, r in rows.items():
            r["paper"] = paper.TABLE_II[names[n]]
        checks = {"(a) multigrained > baseline": _compare(rows, "multigrained", "baseline", ">"),
                  "(b) ftp_pose eps 6/6 >= multigrained": _compare(rows, "ftp_pose_h6_l6", "multigrained", ">="),
                  "(b) ftp_pose eps 6/6 > baseline": _compare(rows, "ftp_pose_h6_l6", "baseline", ">")}
        sp = [rows[n]["clips_per_s"] for n in ("multigrained", "ftp_pose_h6_l6")]
        checks["(b) faster than (a)"] = {"holds": None if None in sp else sp[1] > sp[0],
                                         "ratio": None if None in sp else round(sp[1] / sp[0], 3)}
        result = {**header, "rows": list(rows.values()), "directions": checks}
        labels = {"baseline": "baseline", "multigrained": "(a) + multi-grained", "ftp_pose_h6_l6": "(b) + pruning, eps 6/6"}
        lines = [f"# Table II by experiment ({preset_name} preset)", "",
                 f"Device: {header['device']}. Seeds: {seeds}. Recipe {rh}: {preset['note']}.", "",
                 "| configuration | paper params (M) | paper mAP | paper FPS | params (M) | GFLOPs | "
                 + " | ".join(AP_COLUMNS[:-1]) + " | mean AP (± std over seeds) | clips/s | latency (ms) | seeds |",
                 "|---|" + "---:|" * (len(AP_COLUMNS) + 9)]
        for n, r in rows.items():
            pp = r["paper"]
            lines.append(f"| {labels[n]} | {pp['params_m']:.0f} | {pp['map']:.1f} | {pp['fps']:.0f} | "
                         f"{_fmt(r['params_m'], '.3f')} | {_fmt(r['gflops'], '.3f')} | "
                         + " | ".join(_fmt(r["ap"][c]) for c in AP_COLUMNS[:-1])
                         + f" | {_pm(r['ap']['Mean'], r['ap_std']['Mean'])} | {_fmt(r['clips_per_s'])} | "
                         f"{_fmt(r['latency_ms'], '.2f')} | {r['n_seeds']} |")
        lines += ["", "Per seed mean AP: " + "; ".join(
            f"{n}: " + ", ".join(_fmt(v) for v in r["map_per_seed"]) for n, r in rows.items()), "",
            "Directions (ours; the paper has all of them):", ""]
        for k, v in checks.items():
            extra = "" if v.get("delta") is None else f" (difference {v['delta']:+.2f} AP, seed spread {v['seed_spread']:.2f})"
            if "ratio" in v:
                extra = "" if v["ratio"] is None else f" (x{v['ratio']:.2f} clips/s)"
            lines.append(f"- {k}: {'n/a' if v['holds'] is None else ('yes' if v['holds'] else 'no')}{extra}")
    else:
        grid_ours = [[rows.get(f"ftp_pose_h{eh}_l{el}", {}).get("ap", {}).get("Mean") for eh in EPS] for el in EPS]
        measured = {(eh, el): grid_ours[i][j] for i, el in enumerate(EPS) for j, eh in enumerate(EPS)
                    if grid_ours[i][j] is not None}
        best = max(measured, key=measured.get) if measured else None
        ranked = sorted(measured, key=measured.get, reverse=True)
        paper_grid = paper.table_iii_grid()
        checks = {"best cell (eps_h, eps_l)": {"ours": list(best) if best else None, "paper": [6, 6]},
                  "rank of (6, 6) among measured cells": {
                      "ours": ranked.index((6, 6)) + 1 if (6, 6) in measured else None, "of": len(measured),
                      "paper": 1}}
        result = {**header, "grid": grid, "cells": [list(c) for c in TABLE3_GRIDS[grid]],
                  "subset": grid != "full", "rows": list(rows.values()),
                  "grid_mean_ap": {"rows_eps_l": list(EPS), "cols_eps_h": list(EPS), "values": grid_ours},
                  "paper_grid": paper_grid, "directions": checks}
        cells_note = ("all 16 cells" if grid == "full" else
                      f"a subset ({grid}: {len(TABLE3_GRIDS[grid])} of 16 cells; the others are n/a, not run)")
        lines = [f"# Table III by experiment ({preset_name} preset)", "",
                 f"Device: {header['device']}. Seeds: {seeds}. Recipe {rh}: {preset['note']}. Cells: {cells_note}.",
                 "", "Mean AP (ours; rows eps_l = LRB ratio, columns eps_h = HRB ratio):", "",
                 paper.markdown_table(["LRB \\ HRB", *map(str, EPS)],
                                      [[str(el), *grid_ours[i]] for i, el in enumerate(EPS)]),
                 "", "Paper (PoseTrack2017 val mAP):", "",
                 paper.markdown_table(["LRB \\ HRB", *map(str, EPS)],
                                      [[str(el), *paper_grid[i]] for i, el in enumerate(EPS)]),
                 "", "| eps_h | eps_l | paper mAP | mean AP (± std) | GFLOPs | clips/s | latency (ms) | seeds |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows.values():
            lines.append(f"| {r['eps_h']} | {r['eps_l']} | {paper.TABLE_III[(r['eps_h'], r['eps_l'])]:.1f} | "
                         f"{_pm(r['ap']['Mean'], r['ap_std']['Mean'])} | {_fmt(r['gflops'], '.3f')} | "
                         f"{_fmt(r['clips_per_s'])} | {_fmt(r['latency_ms'], '.2f')} | {r['n_seeds']} |")
        lines += ["", f"Best measured cell: {tuple(best) if best else 'n/a'} (paper: (6, 6)); (6, 6) ranks "
                  f"{checks['rank of (6, 6) among measured cells']['ours'] or 'n/a'} of {len(measured)}."]
        paper.save_eps_grids([(grid_ours, f"ours ({preset_name}, {len(seeds)} seed{'s' if len(seeds) > 1 else ''})"),
                              (paper_grid, "paper (PoseTrack2017 val)")], figures / "table3.png",
                             suptitle=f"Table III: mean AP over eps_h x eps_l; device {header['device']}")
    lines += ["", f"Speed: {header['speed_note']}."]
    if missing:
        lines += ["", f"Missing (n/a above): {', '.join(missing)}."]
    write_text(figures / f"table{table}.md", "\n".join(lines) + "\n")
    write_json(figures / f"table{table}.json", result)
    return result


# ----------------------------------------------------------------------------- driver

def run_ablation(table: int, preset: str = "cpu", seeds: int = 1, out: str | Path | None = None,
                 grid: str | None = None, train: bool = True, remeasure: int = 0) -> dict[str, Any]:
    """Run (or reuse) every configuration x seed of ``table``, then write the tables.

    Returns the table's json plus ``ran`` / ``cached`` counts.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    out = Path(out) if out else Path("runs") / f"ablate_{preset}"
    grid = grid or PRESETS[preset]["table3_grid"]
    seed_list = list(range(int(seeds)))
    confs = configurations(table, grid)
    ran = cached = 0
    if train:
        jobs = [(c, s) for s in seed_list for c in confs]
        for i, (conf, s) in enumerate(jobs):
            _log(f"config {i + 1}/{len(jobs)}: {conf['name']} seed {s}")
            rec = run_config(preset, conf, s, out)
            cached += bool(rec["cached"])
            ran += not rec["cached"]
    if remeasure:
        remeasure_speed([table], preset, out, grid, rounds=remeasure)
    result = write_tables(table, preset, seed_list, out, grid)
    _log(f"table {table}: {ran} trained, {cached} cached, {len(result['missing'])} missing")
    return {**result, "ran": ran, "cached": cached}


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", type=int, nargs="+", choices=(2, 3), required=True,
                        help="2: baseline / multigrained / ftp_pose; 3: ftp_pose over eps_h x eps_l")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help="quick (smoke), cpu (synthetic benchmark, tiny model) or gpu (paper recipe)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per configuration (default 1)")
    parser.add_argument("--grid", choices=sorted(TABLE3_GRIDS), default=None,
                        help="Table III cells (default: the preset's; cpu: cross, 7 cells)")
    parser.add_argument("--out", type=Path, default=None, help="cache folder (default runs/ablate_<preset>)")
    parser.add_argument("--no-train", action="store_true",
                        help="only write the tables from cached results (missing cells n/a)")
    parser.add_argument("--remeasure-speed", type=int, default=0, metavar="ROUNDS",
                        help="re-time all configurations back to back (seed-0 checkpoints, interleaved over "
                             "ROUNDS rounds, median) before writing the tables; 0 = off")


def run_cli(args: argparse.Namespace) -> int:
    for t in args.table:
        res = run_ablation(t, args.preset, args.seeds, args.out, args.grid, train=not args.no_train)
        print(f"table {t}: {res['ran']} trained, {res['cached']} cached, missing {len(res['missing'])}; "
              f"wrote table{t}.md/.json{' and table3.png' if t == 3 else ''}")
    if args.remeasure_speed:
        # one timing session for all the tables' configurations, so a configuration shared by two
        # tables (ftp_pose eps 6/6) gets the same speed in both
        out = Path(args.out) if args.out else Path("runs") / f"ablate_{args.preset}"
        remeasure_speed(list(args.table), args.preset, out, args.grid, rounds=args.remeasure_speed)
        for t in args.table:
            write_tables(t, args.preset, list(range(int(args.seeds))), out, args.grid)
            print(f"table {t}: speeds re-timed ({args.remeasure_speed} rounds); rewrote table{t}.md/.json")
    return 0
