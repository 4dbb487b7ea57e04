"""Ablations by experiment: ``python -m ftp_pose ablate --table 2 3 [--preset cpu|gpu|quick] [--seeds N]``.

Trains and evaluates every configuration of the paper's Table II (baseline, multigrained (a),
ftp_pose (b) with eps 6/6) and the trained cells of Table III with one shared recipe (the preset),
on the synthetic ablation benchmark (``ftp_pose.data.synthetic.ABLATION_BENCHMARK``: small people,
one-frame occlusions of a third of the person instances and one-frame blur with the labels kept,
large distinct hands and feet, limb-like clutter, left/right from the view) for the CPU presets,
or on PoseTrack 2017 for ``gpu``.

Order of work (each step resumes from the jsons already written):

1. Table II, seed-major (every configuration of seed 0, then seed 1, ...): train until the
   validation mean AP plateaus (validated every ``eval_every`` epochs; ``plateau_patience``
   validations without +``plateau_min_delta``) or the epoch cap, then score the final model, and
   right away its controls (key frame only; random pruning and eps 1/1 for ftp_pose) and, for
   ftp_pose eps 6/6, the Table III test-time sweep (:mod:`ftp_pose.experiments.runs`);
2. the trained Table III cells (``--grid``, default the preset's) for ``--table3-seeds`` seeds;
3. with ``--remeasure-speed R``: all Table II configurations re-timed in R interleaved rounds;
4. the tables, derived only from the jsons (:mod:`ftp_pose.experiments.tables`), with paired
   bootstrap intervals (:mod:`ftp_pose.experiments.stats`).

Results: one compact json per configuration and seed under ``figures/ablation/<preset>/`` (plus
``controls/``, ``test_time/`` and ``speed.json``), meant to be committed; checkpoints and the
rendered data under ``--out`` (``runs/ablate_<preset>``). ``--no-train`` only writes the tables.
Outputs in ``ftp_pose.paths.figures_dir()``: ``table2.{md,json,png}``, ``table3.{md,json,png}``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from ftp_pose.data.synthetic import ABLATION_BENCHMARK
from ftp_pose.experiments import runs, tables
from ftp_pose.experiments.stats import timing_summary
from ftp_pose.io import write_json

__all__ = ["PRESETS", "TABLE3_GRIDS", "configurations", "recipe_hash", "results_dir", "run_ablation",
           "remeasure_speed", "write_tables", "add_cli_arguments", "run_cli"]

EPS = runs.EPS

#: Table III cells trained one model each, per grid name: (eps_h, eps_l)
TABLE3_GRIDS: dict[str, tuple[tuple[int, int], ...]] = {
    "full": tuple((eh, el) for el in EPS for eh in EPS),
    # the cross through (6, 6): every HRB ratio at eps_l = 6, every LRB ratio at eps_h = 6 (7 cells)
    "cross": tuple([(eh, 6) for eh in EPS] + [(6, el) for el in EPS if el != 6]),
    "corners": ((1, 1), (6, 1), (1, 6), (6, 6)),
    "center": ((6, 6),),   # only the Table II model (the test-time sweep still gives all 16 cells)
}

#: the synthetic ablation benchmark's generator options (see ftp_pose.data.synthetic's docstring)
_BENCH_SYNTH = dict(ABLATION_BENCHMARK)


def _synthetic_recipe(n_videos: int, n_val: int, n_frames: int, size: tuple[int, int],
                      people: tuple[int, int]) -> dict[str, Any]:
    return dict(n_videos=n_videos, n_frames=n_frames, seed=0,
                options=dict(n_val_videos=n_val, size=list(size), people_per_frame=list(people), **_BENCH_SYNTH))


#: preset -> {"train": TrainConfig values (data paths filled in per run), "bench": speed settings,
#:            "table3_grid": default trained Table III cells, "note": what it is}
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "note": "smoke test: a 1-block width-32 model, 64x48 crops, 1 epoch on 3 tiny videos (numbers meaningless)",
        "synthetic": _synthetic_recipe(3, 2, 4, (128, 96), (1, 1)),
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
                 "128x96 crops, 32 train + 32 val videos x 8 frames of 256x192, flips on, batch 8, "
                 "validated every 2 epochs, stopped when 3 validations in a row add less than 0.5 mean AP, "
                 "not before epoch 26 (cap 40 epochs; lr 1.5e-3, x0.3 at epochs 10 and 20)"),
        "synthetic": _synthetic_recipe(32, 32, 8, (256, 192), (1, 2)),
        "train": {
            "model": {"backbone": "tiny",
                      "overrides": dict(embed_dim=96, num_heads=4, depth=2, lrb_depth=1, refine_depth=1)},
            "data": {"input_size": [128, 96], "heatmap_size": [32, 24], "sigma": 1.5, "offsets": [-1, 1],
                     "aug": {"flip": True, "rotation_factor": 30.0, "half_body_prob": 0.0}},
            "optim": {"epochs": 40, "lr": 1.5e-3, "lr_steps": [10, 20], "lr_factor": 0.3, "warmup_iters": 50,
                      "weight_decay": 0.05, "layer_decay": 1.0, "grad_clip": 1.0},
            "batch_size": 8, "val_batch_size": 32, "workers": 0, "amp": "off", "eval_every": 2,
            "plateau_patience": 3, "plateau_min_delta": 0.5, "plateau_min_epochs": 26,
            "flip_test": True, "log_every": 20,
        },
        "bench": {"warmup": 3, "repeats": 10, "throughput_batch": 16},
        "table3_grid": "cross",
        "partial_tables": True,
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


def recipe_hash(preset: dict[str, Any]) -> str:
    """Short hash of everything in a preset that changes results (not paths): stored results must match it."""
    blob = json.dumps({k: preset.get(k) for k in ("synthetic", "train", "bench")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def results_dir(preset: str, results: str | Path | None = None) -> Path:
    """Where the per-run jsons go: ``results`` or ``figures/ablation/<preset>``."""
    from ftp_pose.paths import figures_dir

    return Path(results) if results else figures_dir() / "ablation" / preset


def _default_out(preset: str) -> Path:
    return Path("runs") / f"ablate_{preset}"


def remeasure_speed(preset_name: str, out: Path, results: Path, rounds: int = 5) -> dict[str, Any]:
    """Re-time the Table II configurations back to back, interleaved over ``rounds`` rounds.

    Each round times every configuration once (its seed-0 checkpoint, the same val clips), so a load
    change on a shared machine hits all alike; per configuration the median and spread over rounds
    (:func:`ftp_pose.experiments.stats.timing_summary`) go to ``<results>/speed.json``.
    """
    import torch

    from ftp_pose.bench import device_name
    from ftp_pose.engine.builders import build_dataset
    from ftp_pose.engine.checkpoint import model_from_checkpoint

    preset = PRESETS[preset_name]
    rh = recipe_hash(preset)
    bench = preset["bench"]
    models, clips = {}, None
    for conf in configurations(2):
        ckpt = out / "train" / f"{conf['name']}_s0_{rh}" / "last.pt"
        if not ckpt.is_file():
            runs.log(f"speed: {conf['name']}: no seed-0 checkpoint ({ckpt}), skipped")
            continue
        models[conf["name"]], cfg = model_from_checkpoint(ckpt, "cpu")
        if clips is None:
            clips = runs.val_clips(build_dataset(cfg, "val"), bench)
    per: dict[str, dict[str, list[float]]] = {n: {"latency_ms": [], "clips_per_s": []} for n in models}
    for r in range(rounds):
        for name, model in models.items():
            lat, cps = runs.time_model(model, clips, bench)
            per[name]["latency_ms"].append(lat)
            per[name]["clips_per_s"].append(cps)
        runs.log(f"speed: round {r + 1}/{rounds} done")
    result = {"recipe_hash": rh, "device": device_name(torch.device("cpu")), "threads": torch.get_num_threads(),
              "rounds": rounds, "throughput_batch": 0 if clips is None else len(clips),
              "method": "seed-0 checkpoints, every configuration timed once per round; median and spread over rounds",
              "configs": {n: {"latency_ms": timing_summary(v["latency_ms"]),
                              "clips_per_s": timing_summary(v["clips_per_s"]),
                              "latency_ms_rounds": v["latency_ms"], "clips_per_s_rounds": v["clips_per_s"]}
                          for n, v in per.items()}}
    write_json(results / "speed.json", result)
    return result


def write_tables(tables_: list[int], preset_name: str, seeds: list[int], results: Path, grid: str | None = None,
                 table3_seeds: list[int] | None = None, figures: Path | None = None) -> dict[int, dict[str, Any]]:
    """Write the tables of ``tables_`` from the jsons in ``results`` (missing runs are n/a)."""
    from ftp_pose.paths import figures_dir

    preset = PRESETS[preset_name]
    rh = recipe_hash(preset)
    figures = figures or figures_dir()
    grid = grid or preset["table3_grid"]
    out: dict[int, dict[str, Any]] = {}
    if 2 in tables_:
        out[2] = tables.write_table2(preset_name, preset, rh, seeds, results, figures, configurations(2))
    if 3 in tables_:
        out[3] = tables.write_table3(preset_name, preset, rh, seeds, results, figures, list(TABLE3_GRIDS[grid]),
                                     seeds if table3_seeds is None else table3_seeds)
    return out


def run_ablation(tables_: list[int], preset: str = "cpu", seeds: int = 1, out: str | Path | None = None,
                 results: str | Path | None = None, grid: str | None = None, table3_seeds: int | None = None,
                 train: bool = True, remeasure: int = 0) -> dict[str, Any]:
    """Run (or reuse) what ``tables_`` need, then write them. Returns ``{"ran", "cached", "tables"}``.

    Table III's test-time sweep comes with the Table II ftp_pose runs, so ``--table 3`` alone also
    trains ftp_pose eps 6/6 for every seed.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    out = Path(out) if out else _default_out(preset)
    res = results_dir(preset, results)
    grid = grid or PRESETS[preset]["table3_grid"]
    if grid not in TABLE3_GRIDS:
        raise ValueError(f"unknown Table III grid {grid!r}; choose one of {sorted(TABLE3_GRIDS)}")
    seed_list = list(range(int(seeds)))
    t3_seeds = list(range(int(table3_seeds))) if table3_seeds is not None else seed_list
    p = PRESETS[preset]
    rh = recipe_hash(p)
    jobs: list[tuple[dict, int]] = []
    t2 = configurations(2)
    if 2 in tables_:
        jobs += [(c, s) for s in seed_list for c in t2]
    elif 3 in tables_:
        jobs += [(c, s) for s in seed_list for c in t2 if c["name"] == runs.SWEEP_SOURCE]
    if 3 in tables_:
        done = {c["name"] for c, _ in jobs}
        jobs += [(c, s) for s in t3_seeds for c in configurations(3, grid)
                 if not (c["name"] in done and s in seed_list)]
    ran = cached = busy = 0
    if train:
        for i, (conf, s) in enumerate(jobs):
            runs.log(f"job {i + 1}/{len(jobs)}: {conf['name']} seed {s}")
            with runs.claim(out / "claims" / f"{conf['name']}_s{s}_{rh}.claim") as mine:
                if not mine:
                    runs.log(f"{conf['name']} seed {s}: another ablate process runs it, skipped")
                    busy += 1
                    continue
                rec = runs.run_config(preset, p, rh, conf, s, out, res)
            cached += bool(rec["cached"])
            ran += not rec["cached"]
            if not rec["cached"] and p.get("partial_tables"):   # partial tables after every new result
                write_tables(tables_, preset, seed_list, res, grid, t3_seeds)
    if remeasure:
        remeasure_speed(preset, out, res, rounds=remeasure)
    written = write_tables(tables_, preset, seed_list, res, grid, t3_seeds)
    for t, r in written.items():
        runs.log(f"table {t}: {len(r['missing'])} missing")
    return {"ran": ran, "cached": cached, "busy": busy, "tables": written}


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", type=int, nargs="+", choices=(2, 3), required=True,
                        help="2: baseline / multigrained / ftp_pose (+ controls); 3: ftp_pose over eps_h x eps_l")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help="quick (smoke), cpu (synthetic benchmark, tiny model) or gpu (paper recipe)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per Table II configuration (default 5)")
    parser.add_argument("--table3-seeds", type=int, default=None,
                        help="seeds per trained Table III cell (default: --seeds)")
    parser.add_argument("--grid", choices=sorted(TABLE3_GRIDS), default=None,
                        help="trained Table III cells (default: the preset's; cpu: cross, 7 cells); the "
                             "test-time sweep always covers all 16")
    parser.add_argument("--out", type=Path, default=None, help="checkpoints and data (default runs/ablate_<preset>)")
    parser.add_argument("--results", type=Path, default=None,
                        help="per-run jsons (default figures/ablation/<preset>)")
    parser.add_argument("--no-train", action="store_true", help="only write the tables from the jsons (missing n/a)")
    parser.add_argument("--remeasure-speed", type=int, default=0, metavar="ROUNDS",
                        help="re-time the Table II configurations (seed-0 checkpoints) in ROUNDS interleaved rounds; "
                             "0 = off")


def run_cli(args: argparse.Namespace) -> int:
    res = run_ablation(list(args.table), args.preset, args.seeds, args.out, args.results, args.grid,
                       args.table3_seeds, train=not args.no_train, remeasure=args.remeasure_speed)
    for t, r in res["tables"].items():
        print(f"table {t}: {len(r['missing'])} missing; wrote table{t}.md/.json/.png")
    print(f"{res['ran']} trained, {res['cached']} cached, {res['busy']} left to other ablate processes")
    return 0
