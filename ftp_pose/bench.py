"""Benchmark the variants side by side: params, GFLOPs, latency, FPS and the DPC selection time.

``python -m ftp_pose bench [--variants baseline multigrained ftp_pose] [--eps-grid] [--backbone base]
[--batch 1] [--throughput-batch 32] [--amp/--no-amp] [--device auto|cpu|cuda] [--warmup N]
[--repeats N] [--rounds N] [--threads N] [--cuda-graphs | --compile] [--dpc auto|reference|cpu|triton]
[--no-free-selection] [--quick]
[--out figures/bench_<device>.json]``

* FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (one forward at batch 1, counted
  per sample; a multiply-add counts 2), broken down by part through the module hierarchy:
  backbone, LRB, HRB upsample, DPC, refine, fusion, head. CPU attention
  (``_scaled_dot_product_flash_attention_for_cpu``) is not in PyTorch's table and is added here.
* Latency: median over ``repeats`` timed forwards after ``warmup`` ones, ``torch.cuda.synchronize()``
  around each on CUDA; FPS = samples per second (at batch 1 and at the throughput batch).
* ``dpc_ms``: the DPC selection alone inside the model, timed by synchronising hooks around the
  pruning modules in a separate run (so the hooks do not disturb the main timing); ``dpc_frac``
  is its share of that run's forward time; measured at batch 1 (``dpc_ms``, ``dpc_frac``) and at
  the throughput batch (``dpc_ms_throughput``, ``dpc_frac_throughput``), always eagerly.
* Runners (:mod:`ftp_pose.models.runner`): ``--cuda-graphs`` replays captured CUDA graphs,
  ``--compile`` uses ``torch.compile(mode="reduce-overhead")``; off CUDA both fall back to
  eager with a message (the row's ``runner`` says what ran).
* DPC backend: ``--dpc reference`` forces the PyTorch reference (sets ``FTP_POSE_DPC``); ``auto``
  uses the fused Triton kernel on CUDA (:mod:`ftp_pose.models.dpc_triton`) and the compiled numba
  loops on the CPU (:mod:`ftp_pose.models.dpc_cpu`).
* ``ftp_pose_free_selection``: the same ftp_pose model keeping evenly spaced tokens (no DPC):
  ``selection_cost = 1 - latency(free) / latency(ftp_pose)`` is what the selection itself costs.
* Variants are built first and then timed in ``--rounds`` interleaved rounds, so that a change of
  load hits all of them alike; ``latency_ms_spread`` is [min, max] of the timed forwards.
* ``pairs``: for each pair of variants ``a`` (later in the list) vs ``b``, the measured speed-up
  ``fps_a / fps_b`` (batch 1 and throughput batch), the FLOP ratio ``gflops_b / gflops_a`` and the
  efficiency ``speedup / flop_ratio`` (1 = the speed-up the FLOPs promise).
* AMP: bf16 autocast on CUDA by default, off on the CPU. The code path is device-agnostic.

Writes a markdown table to stdout and ``figures/bench_<device-slug>.json`` atomically
(``..._quick.json`` in quick mode, so that quick runs do not overwrite real measurements).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from ftp_pose.engine.distributed import resolve_device
from ftp_pose.io import write_json
from ftp_pose.models import QUICK_BACKBONE
from ftp_pose.paths import figures_dir, quick_mode

__all__ = ["count_flops", "time_forward", "bench_variant", "run_bench", "device_name", "add_cli_arguments", "run_cli"]

#: part name -> module paths (relative to the model) whose FLOPs it sums
PARTS: dict[str, tuple[str, ...]] = {
    "backbone": ("backbone",),
    "lrb": ("mgfe.lrb",),
    "hrb_upsample": ("mgfe.hr_up",),
    "dpc": ("mgfe.prune_l", "mgfe.prune_h"),
    "refine": ("mgfe.refine",),
    "fusion": ("fusion",),
    "head": ("head",),
}
EPS_GRID = (1, 3, 6, 10)


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _custom_flops() -> dict:
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: _cpu_sdpa_flop} if op is not None else {}


def _module_flops(counts: dict[str, dict], path: str) -> int:
    """Total FLOPs of the module at ``path`` (a ModuleList sums its direct children)."""
    if path in counts:
        return int(sum(counts[path].values()))
    depth = path.count(".") + 1
    return int(sum(sum(v.values()) for k, v in counts.items() if k.startswith(path + ".") and k.count(".") == depth))


def count_flops(model: nn.Module, clips: torch.Tensor) -> tuple[int, dict[str, int]]:
    """FLOPs of one forward of ``model`` on ``clips`` (total, per part of :data:`PARTS`). The DPC
    runs on its PyTorch reference here: the compiled loops (numba, Triton) are invisible to the
    counter, so the count would otherwise depend on the backend."""
    from ftp_pose.models.dpc import use_backend

    with torch.no_grad(), use_backend("reference"), \
            FlopCounterMode(display=False, depth=None, custom_mapping=_custom_flops()) as fc:
        model(clips)
    counts = fc.get_flop_counts()
    root = type(model).__name__
    parts = {name: sum(_module_flops(counts, f"{root}.{p}") for p in paths) for name, paths in PARTS.items()}
    total = int(fc.get_total_flops())
    parts["other"] = total - sum(parts.values())
    return total, parts


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def time_forward(model: nn.Module, clips: torch.Tensor, warmup: int, repeats: int, amp: bool) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` forwards (after ``warmup``), synchronised on CUDA."""
    device = clips.device
    times = []
    with torch.no_grad(), _autocast(device, amp):
        for i in range(warmup + repeats):
            _sync(device)
            t0 = time.perf_counter()
            model(clips)
            _sync(device)
            if i >= warmup:
                times.append(1000.0 * (time.perf_counter() - t0))
    return times


def _time_dpc(model: nn.Module, clips: torch.Tensor, warmup: int, repeats: int, amp: bool) -> tuple[float, float]:
    """(median DPC ms per forward, median forward ms) with synchronising hooks on the pruning modules."""
    from ftp_pose.models.dpc import DPCPruning

    device = clips.device
    mods = [m for m in model.modules() if isinstance(m, DPCPruning) and m.eps > 1]
    if not mods:
        return 0.0, 0.0
    acc: list[float] = [0.0]
    start: dict[int, float] = {}

    def pre(mod, args, kwargs):
        _sync(device)
        start[id(mod)] = time.perf_counter()

    def post(mod, args, kwargs, out):
        _sync(device)
        acc[0] += 1000.0 * (time.perf_counter() - start[id(mod)])

    handles = [m.register_forward_pre_hook(pre, with_kwargs=True) for m in mods]
    handles += [m.register_forward_hook(post, with_kwargs=True) for m in mods]
    dpc, total = [], []
    try:
        with torch.no_grad(), _autocast(device, amp):
            for i in range(warmup + repeats):
                acc[0] = 0.0
                _sync(device)
                t0 = time.perf_counter()
                model(clips)
                _sync(device)
                if i >= warmup:
                    dpc.append(acc[0])
                    total.append(1000.0 * (time.perf_counter() - t0))
    finally:
        for h in handles:
            h.remove()
    return statistics.median(dpc), statistics.median(total)


def device_name(device: torch.device) -> str:
    """GPU name, or the CPU model (from /proc/cpuinfo when available)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def _prepare(name: str, device: torch.device, *, backbone: str, eps_h: float | None, eps_l: float | None,
             compile: bool, cuda_graphs: bool, label: str | None, overrides: dict[str, Any] | None,
             selection: str = "dpc") -> dict[str, Any]:
    """Build one variant, count its FLOPs (on the CPU, batch 1) and wrap it in its runner."""
    from ftp_pose.models import build_model
    from ftp_pose.models.dpc import DPCPruning
    from ftp_pose.models.runner import make_runner

    torch.manual_seed(0)
    model = build_model(name, backbone=backbone, eps_h=eps_h, eps_l=eps_l, **(overrides or {})).eval()
    for mod in model.modules():
        if isinstance(mod, DPCPruning):
            mod.selection = selection
    cfg = model.config
    t, (h, w) = cfg.num_frames, cfg.input_size
    params = sum(p.numel() for p in model.parameters())
    flops, parts = count_flops(model, torch.randn(1, t, 3, h, w))
    model.to(device)
    runner, mode, message = make_runner(model, device, "cuda_graphs" if cuda_graphs else "compile" if compile else "eager")
    if message:
        print(f"bench: {message}", flush=True)
    row: dict[str, Any] = {"name": label or name, "variant": name, "eps_h": cfg.eps_h if cfg.use_hrb else None,
                           "eps_l": cfg.eps_l, "selection": selection, "runner": mode,
                           "params_m": round(params / 1e6, 3), "gflops": round(flops / 1e9, 3),
                           "breakdown_gflops": {k: round(v / 1e9, 3) for k, v in parts.items()}}
    return {"row": row, "model": model, "runner": runner, "shape": (t, 3, h, w)}


def _time_prepared(jobs: list[dict[str, Any]], device: torch.device, batch: int, throughput_batch: int, amp: bool,
                   warmup: int, repeats: int, rounds: int) -> list[dict[str, Any]]:
    """Time the prepared variants side by side: after ``warmup`` forwards each, ``rounds``
    interleaved rounds of ``ceil(repeats / rounds)`` forwards per variant (the same load for all);
    latency = median over all timed forwards. Then the DPC share per variant (hooked run)."""
    rounds = max(1, int(rounds))
    per_round = max(1, -(-repeats // rounds))
    for tag, bs in (("", batch), ("_throughput", throughput_batch)):
        clips = [torch.randn(bs, *job["shape"], device=device) for job in jobs]
        times: list[list[float]] = [[] for _ in jobs]
        for job, x in zip(jobs, clips):
            time_forward(job["runner"], x, warmup, 0, amp)
        for _ in range(rounds):
            for i, (job, x) in enumerate(zip(jobs, clips)):
                times[i] += time_forward(job["runner"], x, 0, per_round, amp)
        for job, x, ts in zip(jobs, clips, times):
            row, ms = job["row"], statistics.median(ts)
            row[f"latency{tag}_ms"] = round(ms, 3)
            row[f"latency{tag}_ms_spread"] = [round(min(ts), 3), round(max(ts), 3)]
            row[f"fps{tag}"] = round(1000.0 * bs / ms, 2)
            dpc_ms, hooked_ms = _time_dpc(job["model"], x, max(1, warmup // 2), repeats, amp)
            row[f"dpc_ms{tag}"] = round(dpc_ms, 3)
            row[f"dpc_frac{tag}"] = round(dpc_ms / hooked_ms, 4) if hooked_ms else 0.0
    return [job["row"] for job in jobs]


def bench_variant(name: str, device: torch.device, *, backbone: str = "base", eps_h: float | None = None,
                  eps_l: float | None = None, batch: int = 1, throughput_batch: int = 32, amp: bool = False,
                  warmup: int = 10, repeats: int = 50, compile: bool = False, cuda_graphs: bool = False,
                  label: str | None = None, overrides: dict[str, Any] | None = None,
                  selection: str = "dpc") -> dict[str, Any]:
    """One row of the benchmark for variant ``name`` (see :func:`ftp_pose.models.build_model`)."""
    job = _prepare(name, device, backbone=backbone, eps_h=eps_h, eps_l=eps_l, compile=compile,
                   cuda_graphs=cuda_graphs, label=label, overrides=overrides, selection=selection)
    row = _time_prepared([job], device, batch, throughput_batch, amp, warmup, repeats, 1)[0]
    del job
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


#: the label of the "free selection" row: ftp_pose with evenly spaced kept tokens (no DPC cost)
FREE = "ftp_pose_free_selection"


def run_bench(variants: list[str] | None = None, *, eps_grid: bool = False, backbone: str = "base",
              batch: int = 1, throughput_batch: int = 32, amp: bool | None = None, device: str = "auto",
              warmup: int = 10, repeats: int = 50, compile: bool = False, cuda_graphs: bool = False,
              dpc: str | None = None, quick: bool = False, progress: bool = True, rounds: int = 5,
              free_selection: bool = True, threads: int | None = None,
              img_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Benchmark the variants side by side (and, with ``eps_grid``, ``ftp_pose`` over eps_h x eps_l
    in {1,3,6,10}^2), timed in ``rounds`` interleaved rounds.

    Returns the json-ready result (``device``, ``batch``, ``amp``, ``rows`` ...). ``quick``: the quick
    preset (``QUICK_BACKBONE``, the model of configs/quick_cpu.yaml), throughput batch 2, 1 warm-up
    and 1 repeat, for a CPU smoke run. ``dpc``: the DPC backend (``auto``, ``reference``, ``cpu``,
    ``triton``; default: ``$FTP_POSE_DPC`` or auto). ``free_selection``: when ``ftp_pose`` runs,
    also the same model with evenly spaced kept tokens (row :data:`FREE`): what the selection
    costs is ``1 - latency(free) / latency(ftp_pose)`` (``result["selection_cost"]``).
    ``threads``: ``torch.set_num_threads`` for the run (CPU). ``img_size``: input ``(H, W)``
    (default the preset's 256 x 192; the token grids follow).
    """
    from tqdm.auto import tqdm

    from ftp_pose.models.dpc import BACKEND_ENV

    if dpc is not None:
        os.environ[BACKEND_ENV] = dpc
    dpc = os.environ.get(BACKEND_ENV, "auto")
    if threads is not None:
        torch.set_num_threads(int(threads))

    dev = resolve_device(device)
    amp = (dev.type == "cuda") if amp is None else bool(amp)
    overrides: dict[str, Any] = {} if img_size is None else {"img_size": tuple(int(v) for v in img_size)}
    if quick:
        backbone, throughput_batch, warmup, repeats, rounds = QUICK_BACKBONE, min(throughput_batch, 2), 1, 1, 1
    specs: list[tuple[str, str, float | None, float | None, str]] = [(v, v, None, None, "dpc") for v in (variants or [])]
    if free_selection and "ftp_pose" in (variants or []):
        specs.append((FREE, "ftp_pose", None, None, "even"))
    if eps_grid:
        specs += [(f"ftp_pose_h{eh}_l{el}", "ftp_pose", eh, el, "dpc") for eh in EPS_GRID for el in EPS_GRID]
    if not specs:
        raise ValueError("bench: nothing to run (give --variants and/or --eps-grid)")
    jobs = [_prepare(name, dev, backbone=backbone, eps_h=eh, eps_l=el, compile=compile, cuda_graphs=cuda_graphs,
                     label=label, overrides=overrides, selection=sel)
            for label, name, eh, el, sel in tqdm(specs, desc="bench: build", disable=None if progress else True)]
    rows = _time_prepared(jobs, dev, batch, throughput_batch, amp, warmup, repeats, rounds)
    del jobs
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return assemble_result(rows, device=dev, batch=batch, throughput_batch=throughput_batch, amp=amp,
                           backbone=backbone, overrides=overrides, quick=quick, compile=compile,
                           cuda_graphs=cuda_graphs, dpc_backend=dpc, warmup=warmup, repeats=repeats, rounds=rounds)


def assemble_result(rows: list[dict[str, Any]], *, device: torch.device, batch: int, throughput_batch: int,
                    amp: bool, backbone: str, overrides: dict[str, Any], quick: bool, compile: bool,
                    cuda_graphs: bool, dpc_backend: str, warmup: int, repeats: int, rounds: int = 1) -> dict[str, Any]:
    """The benchmark's json (``figures/bench_<device>.json``) from its timed rows: the settings,
    ``rows``, ``speedup`` (ftp_pose against the others), ``selection_cost`` (with the free row)
    and ``pairs``. One owner of the format: ``gpu-check`` writes ``bench_cuda.json`` through it."""
    result: dict[str, Any] = {
        "device": device_name(device), "device_type": device.type, "batch": batch,
        "throughput_batch": throughput_batch, "amp": amp, "backbone": backbone, "overrides": overrides,
        "quick": quick, "compile": compile, "cuda_graphs": cuda_graphs, "dpc_backend": dpc_backend,
        "threads": torch.get_num_threads(), "warmup": warmup, "repeats": repeats, "rounds": rounds,
        "torch": torch.__version__, "rows": rows,
    }
    by = {r["name"]: r for r in rows}
    if "ftp_pose" in by:
        result["speedup"] = {
            f"ftp_pose_vs_{ref}": {
                "fps": round(by["ftp_pose"]["fps"] / by[ref]["fps"], 3),
                "fps_throughput": round(by["ftp_pose"]["fps_throughput"] / by[ref]["fps_throughput"], 3),
                "flops": round(by[ref]["gflops"] / by["ftp_pose"]["gflops"], 3),
            } for ref in ("baseline", "multigrained") if ref in by}
        if FREE in by:
            result["selection_cost"] = {tag.strip("_") or "batch": round(
                1.0 - by[FREE][f"latency{tag}_ms"] / by["ftp_pose"][f"latency{tag}_ms"], 4)
                for tag in ("", "_throughput")}
    result["pairs"] = pair_speedups([r for r in rows if r["name"] != FREE])
    return result


def pair_speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each pair of rows (``a`` later than ``b``): measured speed-up, FLOP ratio and efficiency.

    ``speedup = fps_a / fps_b`` (batch 1; ``_throughput``: throughput batch), ``flop_ratio =
    gflops_b / gflops_a``, ``efficiency = speedup / flop_ratio``.
    """
    pairs = []
    for j, a in enumerate(rows):
        for b in rows[:j]:
            flop_ratio = b["gflops"] / a["gflops"] if a["gflops"] else float("nan")
            p: dict[str, Any] = {"a": a["name"], "b": b["name"], "flop_ratio": round(flop_ratio, 4)}
            for tag in ("", "_throughput"):
                sp = a[f"fps{tag}"] / b[f"fps{tag}"] if b[f"fps{tag}"] else float("nan")
                p[f"speedup{tag}"] = round(sp, 4)
                p[f"efficiency{tag}"] = round(sp / flop_ratio, 4) if flop_ratio else float("nan")
            pairs.append(p)
    return pairs


def format_tables(result: dict[str, Any]) -> str:
    """Two markdown tables: the main numbers, and the per-part GFLOPs breakdown."""
    tb = result["throughput_batch"]
    lines = [f"Device: {result['device']} | threads {result.get('threads')} | batch {result['batch']} | "
             f"throughput batch {tb} | amp {result['amp']} | backbone {result['backbone']} | "
             f"DPC backend {result['dpc_backend']}", "",
             f"| variant | params (M) | GFLOPs | latency (ms) | FPS | FPS @{tb} | DPC (ms) | DPC share | "
             f"DPC share @{tb} | runner |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['name']} | {r['params_m']:.2f} | {r['gflops']:.2f} | {r['latency_ms']:.2f} | "
                     f"{r['fps']:.1f} | {r['fps_throughput']:.1f} | {r['dpc_ms']:.2f} | {100 * r['dpc_frac']:.1f} % | "
                     f"{100 * r['dpc_frac_throughput']:.1f} % | {r['runner']} |")
    parts = list(result["rows"][0]["breakdown_gflops"])
    lines += ["", "GFLOPs per part (per sample)", "", "| variant | " + " | ".join(parts) + " |",
              "|---|" + "---:|" * len(parts)]
    for r in result["rows"]:
        lines.append(f"| {r['name']} | " + " | ".join(f"{r['breakdown_gflops'][p]:.2f}" for p in parts) + " |")
    if result.get("selection_cost"):
        c = result["selection_cost"]
        lines += ["", f"Selection cost (1 - latency of {FREE} / latency of ftp_pose): "
                  f"{100 * c['batch']:.1f} % at batch {result['batch']}, {100 * c['throughput']:.1f} % at batch {tb}"]
    if result.get("pairs"):
        lines += ["", f"Speed-up vs FLOP ratio (efficiency = speed-up / FLOP ratio; DPC backend {result['dpc_backend']})",
                  "", f"| a vs b | FLOP ratio | speed-up @{result['batch']} | efficiency @{result['batch']} | "
                  f"speed-up @{tb} | efficiency @{tb} |", "|---|---:|---:|---:|---:|---:|"]
        for p in result["pairs"]:
            lines.append(f"| {p['a']} vs {p['b']} | {p['flop_ratio']:.2f} | {p['speedup']:.2f} | {p['efficiency']:.2f} | "
                         f"{p['speedup_throughput']:.2f} | {p['efficiency_throughput']:.2f} |")
    return "\n".join(lines)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", nargs="*", default=["baseline", "multigrained", "ftp_pose"],
                        help="variants to run (default: the three of Table II)")
    parser.add_argument("--eps-grid", action="store_true", help="also ftp_pose over eps_h x eps_l in {1,3,6,10}^2")
    from ftp_pose.models import BACKBONES

    parser.add_argument("--backbone", default="base", choices=sorted(BACKBONES),
                        help="tiny, small, base (paper), large or quick")
    parser.add_argument("--batch", type=int, default=1, help="batch for latency (default 1)")
    parser.add_argument("--throughput-batch", type=int, default=32, help="batch for throughput FPS")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast (default: on for CUDA, off on the CPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50)
    fast = parser.add_mutually_exclusive_group()
    fast.add_argument("--compile", action="store_true",
                      help="torch.compile(mode='reduce-overhead') before timing (CUDA only; eager elsewhere)")
    fast.add_argument("--cuda-graphs", action="store_true",
                      help="replay captured CUDA graphs (CUDA only; eager elsewhere)")
    parser.add_argument("--dpc", choices=("auto", "reference", "cpu", "triton"), default=None,
                        help="DPC backend (default: $FTP_POSE_DPC or auto = the Triton kernel on CUDA, "
                             "the numba loops on the CPU)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved timing rounds: the repeats are spread over the variants in turn")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU; default: PyTorch's)")
    parser.add_argument("--img-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="input size (default 256 192; e.g. 128 96 for the ablate cpu preset's model)")
    parser.add_argument("--no-free-selection", dest="free_selection", action="store_false",
                        help="skip the ftp_pose row with evenly spaced kept tokens (the cost of the selection)")
    parser.add_argument("--quick", action="store_true", help="tiny model, few repeats (also FTP_POSE_QUICK=1)")
    parser.add_argument("--out", default=None, help="json path (default figures/bench_<device>.json)")


def run_cli(args: argparse.Namespace) -> int:
    quick = bool(args.quick or quick_mode())
    result = run_bench(args.variants, eps_grid=args.eps_grid, backbone=args.backbone, batch=args.batch,
                       throughput_batch=args.throughput_batch, amp=args.amp, device=args.device,
                       warmup=args.warmup, repeats=args.repeats, compile=args.compile,
                       cuda_graphs=args.cuda_graphs, dpc=args.dpc, quick=quick, rounds=args.rounds,
                       free_selection=args.free_selection, threads=args.threads,
                       img_size=args.img_size)
    print(format_tables(result))
    out = Path(args.out) if args.out else figures_dir() / (
        f"bench_{_slug(result['device'])}{'_quick' if quick else ''}.json")
    write_json(out, result)
    print(f"\nwrote {out}")
    return 0
