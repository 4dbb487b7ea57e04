"""One-call GPU check: correctness of the DPC kernel and the CUDA-graph runner, then Table II speed.

Run from the repository root (``PYTHONPATH`` at the repository) on a machine with a CUDA GPU::

    python3 -m ftp_pose gpu-check            # about 7 minutes on an H100
    python3 -m ftp_pose gpu-check --dry-run  # the same steps at tiny sizes on the CPU (< 1 minute)

Outputs go to ``--out``, else ``$OUT``, else ``figures/gpu_check/`` (dry run:
``figures/gpu_check_dry_run/``): ``gpu_check.json`` (everything, rewritten after each step),
``gpu_check.md`` (the goals of issue 12 with pass / fail, the tables) and ``profile.txt``; the
Table II rows of the kernel + CUDA-graph setup also go to ``figures/bench_cuda.json`` in the
format of ``python -m ftp_pose bench`` (``<out>/figures/bench_cuda.json`` when an output folder is
given). Needs torch, triton and timm only (no pytest, pycocotools, plotly, ipywidgets or OpenCV;
no ``git``: the commit comes from ``git rev-parse`` if it works, else ``$FTP_POSE_COMMIT``).

Steps, in order of value; each is skipped when its estimated time no longer fits the budget
(7 minutes), and each row inside a step is guarded (a failing variant is recorded, the others run):

1. ``tests``: the checks of ``tests/test_cuda.py`` as plain functions (no pytest needed): the
   Triton kernel against the reference at N = 3072 (HRB, C = 768) and N = 576 (LRB) compared by
   :func:`compare_selection`, :class:`~ftp_pose.models.runner.CudaGraphRunner` against eager
   before and after ``set_pruning``, and a bf16 autocast forward against fp32.
2. ``kernel``: reference vs kernel at B = 32 (time, peak memory, the comparison) and the
   kernel time for a few tile shapes.
3. ``bench``: the three variants (base backbone, bf16) at batch 1 and 32 with the kernel, with
   and without CUDA graphs (the former is written to ``bench_cuda.json``).
4. ``profile``: torch.profiler's top CUDA ops of ftp_pose (kernel, eager) at batch 1 and 32.
5. ``eps_h``: ftp_pose at eps_h 3 / 6 / 10 (kernel + CUDA graphs): "higher eps_h is never slower".
6. ``train``: forward + backward + AdamW steps per second at batch 32.
7. ``bench_reference``: the three variants with the reference DPC, eager (about the "before").
8. ``compile``: seconds to compile ftp_pose with ``mode="reduce-overhead"``, in a subprocess
   with a time limit.

The exit code is 0 when every step ran without error and every check passed, 1 otherwise
(2: no CUDA device and no ``--dry-run``). The dry run uses the quick backbone at 64 x 48 pixels,
one repeat, the kernel through Triton's interpreter (``TRITON_INTERPRET=1``) in the checks and
the reference DPC inside the models (the interpreter is far too slow for a model), and skips
the compile step.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from ftp_pose.paths import REPO_ROOT as ROOT
from ftp_pose.paths import figures_dir

__all__ = ["compare_selection", "check_kernel_hrb", "check_kernel_lrb", "check_runner", "check_bf16",
           "run_checks", "Plan", "REAL", "DRY_RUN", "run_gpu_check", "add_cli_arguments", "run_cli"]

#: the DPC backend environment switch (:data:`ftp_pose.models.dpc.BACKEND_ENV`, not imported at
#: module level so that ``TRITON_INTERPRET`` can still be set before the kernel module loads)
BACKEND_ENV = "FTP_POSE_DPC"


# ----------------------------------------------------------------------------------------------
# kernel vs reference: the one comparison of two DPC selections
# ----------------------------------------------------------------------------------------------

def _tie_partners(lr: torch.Tensor, lr_tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs ``(i, j)`` of one batch element with ``|lr_i - lr_j| < lr_tol`` (``lr``: ``N``)."""
    order = torch.argsort(lr)
    s = lr[order]
    ii, jj = [], []
    for shift in range(1, len(s)):
        close = (s[shift:] - s[:-shift]) < lr_tol
        if not bool(close.any()):  # sorted: no pair further apart can be closer
            break
        ii.append(order[:-shift][close])
        jj.append(order[shift:][close])
    if not ii:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.cat(ii), torch.cat(jj)


def compare_selection(ref: tuple[torch.Tensor, torch.Tensor], new: tuple[torch.Tensor, torch.Tensor],
                      num_keep: int, features: torch.Tensor, lr_tol: float = 1e-5, score_rtol: float = 1e-5,
                      lr_atol: float = 1e-4, delta_rtol: float = 1e-3, max_listed: int = 20) -> dict[str, Any]:
    """Compare two DPC results ``(log rho, delta)`` (each ``B x N``) by the tokens they keep.

    ``features``: the ``B x N x C`` tokens the distances are taken on (for the HRB the explicitly
    upsampled tokens, best in float64), in the units of ``delta`` (``||f_i - f_j|| = delta``).
    Both selections take the ``num_keep`` highest ``log rho + log delta`` (as the model does).

    Per batch element the kept index *sets* are compared; every token kept by one side only is
    classified:

    * ``duplicate``: it has an exact copy (identical feature row) kept by the other side only;
    * ``near_tie_density``: its ``delta`` hangs on a density near-tie: some token ``u`` with
      ``|log rho_t - log rho_u| < lr_tol`` lies within ``delta_t`` (either side's) of it, so
      rounding decides whether ``u`` is denser and thus ``delta_t``;
    * ``near_tie_score``: paired with a token of the other side whose score is within a
      relative ``score_rtol`` (``|log score difference| <= score_rtol``);
    * ``displaced``: a token at the bottom of its side's kept order (no higher score than any
      token both keep) that made room for, or took the room of, a density-tied token of the
      other side (at most as many as those);
    * ``unexplained``: anything else (a real disagreement).

    ``delta`` is compared on *untied* tokens only (no density near-tie in the sense above, no
    exact copy), ``log rho`` on all tokens. ``ok``: nothing unexplained, ``max_abs_log_rho_diff
    <= lr_atol`` and ``max_rel_delta_diff_untied <= delta_rtol``. At most ``max_listed`` swaps
    are listed (``swaps``), all are counted (``counts``).
    """
    from ftp_pose.models.dpc import select_tokens

    lr0, d0 = (t.detach().float().cpu() for t in ref)
    lr1, d1 = (t.detach().float().cpu() for t in new)
    if lr0.shape != lr1.shape or d0.shape != lr0.shape or d1.shape != lr0.shape or lr0.dim() != 2:
        raise ValueError(f"compare_selection: expected four B x N tensors, got {[tuple(t.shape) for t in (*ref, *new)]}")
    b, n = lr0.shape
    feats = features.detach().cpu().double()
    if feats.shape[:2] != (b, n):
        raise ValueError(f"compare_selection: features {tuple(feats.shape)} do not match scores {(b, n)}")
    ls0, ls1 = lr0 + torch.log(d0), lr1 + torch.log(d1)  # float32, as the model selects
    k0 = select_tokens(ls0, num_keep, log_score=ls0)
    k1 = select_tokens(ls1, num_keep, log_score=ls1)
    ls0, ls1, lr0d, lr1d = ls0.double(), ls1.double(), lr0.double(), lr1.double()
    dmax = torch.maximum(d0, d1).double()

    tied = torch.zeros(b, n, dtype=torch.bool)
    partner = torch.full((b, n), -1, dtype=torch.long)
    for bi in range(b):
        for lr in (lr0d[bi], lr1d[bi]):
            i, j = _tie_partners(lr, lr_tol)
            if len(i) == 0:
                continue
            dist = (feats[bi, i] - feats[bi, j]).norm(dim=-1)
            for a, c in ((i, j), (j, i)):
                hit = dist <= dmax[bi, a] * (1 + 1e-4) + 1e-6
                tied[bi, a[hit]] = True
                partner[bi, a[hit]] = c[hit]

    counts = {"duplicate": 0, "near_tie_density": 0, "near_tie_score": 0, "displaced": 0, "unexplained": 0}
    swaps: list[dict[str, Any]] = []

    def record(kind: str, bi: int, **kw: Any) -> None:
        counts[kind] += 1
        if len(swaps) < max_listed:
            swaps.append({"kind": kind, "batch": bi, **kw})

    swapped_elements = 0
    for bi in range(b):
        s0, s1 = set(k0[bi].tolist()), set(k1[bi].tolist())
        only0, only1 = sorted(s0 - s1), sorted(s1 - s0)
        if not only0:
            continue
        swapped_elements += 1
        for t in list(only0):  # exact copies swapped
            copy = next((u for u in only1 if torch.equal(feats[bi, t], feats[bi, u])), None)
            if copy is not None:
                record("duplicate", bi, ref=t, new=copy)
                only0.remove(t)
                only1.remove(copy)
        tied0 = [t for t in only0 if tied[bi, t]]
        tied1 = [t for t in only1 if tied[bi, t]]
        for side, toks in (("ref", tied0), ("new", tied1)):
            for t in toks:
                record("near_tie_density", bi, **{side: t}, partner=int(partner[bi, t]),
                       log_rho_gap=float(abs(lr0d[bi, t] - lr0d[bi, partner[bi, t]])),
                       delta_ref=float(d0[bi, t]), delta_new=float(d1[bi, t]))
        only0 = [t for t in only0 if not tied[bi, t]]
        only1 = [t for t in only1 if not tied[bi, t]]
        for t in list(only0):
            u = next((u for u in only1 if abs(ls0[bi, t] - ls0[bi, u]) <= score_rtol
                      or abs(ls1[bi, t] - ls1[bi, u]) <= score_rtol), None)
            if u is not None:
                record("near_tie_score", bi, ref=t, new=u, log_score_gap=float(abs(ls0[bi, t] - ls0[bi, u])))
                only0.remove(t)
                only1.remove(u)
        common = sorted(s0 & s1)
        for side, toks, ls, room in (("ref", only0, ls0, len(tied1)), ("new", only1, ls1, len(tied0))):
            floor = float(ls[bi, common].min()) if common else float("inf")
            for t in toks:
                if room > 0 and float(ls[bi, t]) <= floor + score_rtol:
                    record("displaced", bi, **{side: t})
                    room -= 1
                else:
                    record("unexplained", bi, **{side: t}, log_score_ref=float(ls0[bi, t]),
                           log_score_new=float(ls1[bi, t]), delta_ref=float(d0[bi, t]), delta_new=float(d1[bi, t]))

    untied = ~tied
    rel = (d0 - d1).abs() / d0.abs().clamp_min(1e-12)
    max_rel = float(rel[untied].max()) if bool(untied.any()) else 0.0
    max_lr = float((lr0 - lr1).abs().max())
    ok = counts["unexplained"] == 0 and max_lr <= lr_atol and max_rel <= delta_rtol
    return {
        "ok": bool(ok), "batch": b, "tokens": n, "kept": int(num_keep),
        "kept_sets_equal_fraction": round(1 - swapped_elements / b, 4),
        "tokens_swapped": sum(counts.values()), "counts": counts, "swaps": swaps,
        "max_abs_log_rho_diff": max_lr, "max_rel_delta_diff_untied": max_rel,
        "tied_fraction": round(float(tied.float().mean()), 4),
        "tolerances": {"lr_tol": lr_tol, "score_rtol": score_rtol, "lr_atol": lr_atol, "delta_rtol": delta_rtol},
    }


@contextlib.contextmanager
def with_backend(backend: str):
    """Set ``$FTP_POSE_DPC`` to ``backend`` inside the block."""
    old = os.environ.get(BACKEND_ENV)
    os.environ[BACKEND_ENV] = backend
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = old


@contextlib.contextmanager
def full_fp32_matmul():
    """float32 matmuls without TF32 inside the block (the reference's distances need them)."""
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def kernel_unavailable(device: torch.device) -> str | None:
    """Why the Triton kernel cannot run on the CPU here (None: it can). On CUDA a kernel that
    does not load is an error (raised), not a reason to skip."""
    try:
        import ftp_pose.models.dpc_triton as dt
    except Exception as exc:  # no triton, or one that cannot load here
        if device.type == "cuda":
            raise
        return f"triton kernel not importable: {type(exc).__name__}: {exc}"[:300]
    interpreted = type(dt._diag).__name__ == "InterpretedFunction"
    if device.type != "cuda" and not interpreted:
        return "the kernel runs on the CPU only under TRITON_INTERPRET=1 set before ftp_pose.models.dpc_triton loads"
    return None


def _kernel_vs_reference(device: torch.device, scores: Callable[[], tuple], features: torch.Tensor,
                         n: int, eps: float) -> dict[str, Any]:
    from ftp_pose.models.dpc import num_kept

    why = kernel_unavailable(device)
    if why:
        return {"ok": None, "skipped": why}
    out = {}
    with full_fp32_matmul():
        for backend in ("reference", "triton"):
            with with_backend(backend):
                rho, delta, _ = scores()
            out[backend] = (torch.log(rho), delta)
    return compare_selection(out["reference"], out["triton"], num_kept(n, eps), features)


def _hrb_case(device: torch.device | str, batch: int, grid: tuple[int, int], factor: int, width: int,
              seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from ftp_pose.models.upsample import upsample_tokens

    g = torch.Generator().manual_seed(seed)
    low = torch.randn(batch, grid[0] * grid[1], width, generator=g)
    feats = upsample_tokens(low.double(), grid, factor, "bilinear", method="interpolate")
    return low.to(device), feats


def check_kernel_hrb(device: torch.device | str = "cuda", batch: int = 8, grid: tuple[int, int] = (16, 12),
                     factor: int = 4, width: int = 768, k: int = 5, eps: float = 6, seed: int = 0) -> dict[str, Any]:
    """Kernel vs reference on the HRB's upsampled tokens (``B x (f^2 h w) x C``, N = 3072 by default)."""
    from ftp_pose.models.dpc import dpc_knn_scores_upsampled

    device = torch.device(device)
    low, feats = _hrb_case(device, batch, grid, factor, width, seed)
    n = feats.shape[1]
    res = _kernel_vs_reference(device, lambda: dpc_knn_scores_upsampled(low, grid, factor, "bilinear", k), feats, n, eps)
    return {"case": f"hrb B={batch} N={n} C={width}", **res}


def check_kernel_lrb(device: torch.device | str = "cuda", batch: int = 8, tokens: int = 576, width: int = 768,
                     k: int = 5, eps: float = 6, seed: int = 1) -> dict[str, Any]:
    """Kernel vs reference on plain tokens (``B x N x C``, the LRB's N = 576 by default)."""
    from ftp_pose.models.dpc import dpc_knn_scores

    device = torch.device(device)
    x = torch.randn(batch, tokens, width, generator=torch.Generator().manual_seed(seed))
    xd = x.to(device)
    res = _kernel_vs_reference(device, lambda: dpc_knn_scores(xd, k), x.double(), tokens, eps)
    return {"case": f"lrb B={batch} N={tokens} C={width}", **res}


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> tuple[bool, float]:
    err = float((a.float() - b.float()).abs().max())
    return err <= rtol * (1.0 + float(b.float().abs().max())), err


def check_runner(device: torch.device | str = "cuda", backbone: str = "quick",
                 img_size: tuple[int, int] = (256, 192), batch: int = 2) -> dict[str, Any]:
    """:class:`~ftp_pose.models.runner.CudaGraphRunner` vs eager ``ftp_pose``: fp32 before and after
    ``set_pruning`` (which must change the output and capture a new graph), a padded batch
    (``batch + 1`` runs in the next power-of-two graph) and bf16 autocast. Off CUDA the runner
    runs eagerly (no capture): the check then only exercises the calls."""
    from ftp_pose.models import build_model
    from ftp_pose.models.runner import CudaGraphRunner, batch_bucket

    device = torch.device(device)
    torch.manual_seed(0)
    model = build_model("ftp_pose", backbone=backbone, img_size=img_size).to(device).eval()
    cfg = model.config
    x = torch.randn(batch + 1, cfg.num_frames, 3, *cfg.input_size, device=device)
    runner = CudaGraphRunner(model)
    res: dict[str, Any] = {}
    with torch.no_grad():
        e1 = model(x[:batch])
        g1, g1b = runner(x[:batch]), runner(x[:batch])
        res["fp32"] = _close(g1, e1, 1e-4)
        res["replay"] = _close(g1b, e1, 1e-4)
        model.set_pruning(eps_h=3, eps_l=3)
        e2 = model(x[:batch])
        res["changed_by_set_pruning"] = (float((e2 - e1).abs().max()) > 1e-4, float((e2 - e1).abs().max()))
        res["after_set_pruning"] = _close(runner(x[:batch]), e2, 1e-4)
        size = batch_bucket(batch + 1)
        padded = torch.cat([x, x[:1].expand(size - batch - 1, *x.shape[1:])])  # the runner pads with copies of x[0]
        res["padded_batch"] = _close(runner(x), model(padded)[: batch + 1], 1e-4)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                res["bf16"] = _close(runner(x[:batch]), model(x[:batch]), 1e-3)
    expected = 4 if device.type == "cuda" else 0
    out = {name: {"ok": bool(ok), "max_abs_diff": err} for name, (ok, err) in res.items()}
    out["captures"] = {"ok": runner.captures == expected, "captured": runner.captures, "expected": expected}
    return {"ok": all(v["ok"] for v in out.values()), **out}


def check_bf16(device: torch.device | str = "cuda", backbone: str = "quick", img_size: tuple[int, int] = (256, 192),
               batch: int = 2, rtol: float = 0.02) -> dict[str, Any]:
    """bf16 autocast forward of each variant vs its fp32 forward: relative L2 error ``<= rtol``."""
    from ftp_pose.models import build_model

    device = torch.device(device)
    out: dict[str, Any] = {}
    for name in ("baseline", "multigrained", "ftp_pose"):
        torch.manual_seed(0)
        model = build_model(name, backbone=backbone, img_size=img_size).to(device).eval()
        cfg = model.config
        x = torch.randn(batch, cfg.num_frames, 3, *cfg.input_size, device=device)
        with torch.no_grad(), full_fp32_matmul():
            y32 = model(x).float()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                y16 = model(x).float()
        rel = float((y16 - y32).norm() / y32.norm().clamp_min(1e-12))
        out[name] = {"ok": bool(rel <= rtol) and bool(torch.isfinite(y16).all()), "rel_l2": rel}
    return {"ok": all(v["ok"] for v in out.values()), "rtol": rtol, **out}


# ----------------------------------------------------------------------------------------------
# the plan (real and dry-run sizes) and the steps
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """Sizes of one run of the check."""

    device: str = "cuda"
    dry_run: bool = False
    budget_s: float = 420.0
    backbone: str = "base"
    img_size: tuple[int, int] = (256, 192)
    test_backbone: str = "quick"
    hrb: dict = field(default_factory=lambda: dict(batch=8, grid=(16, 12), factor=4, width=768))
    lrb: dict = field(default_factory=lambda: dict(batch=8, tokens=576, width=768))
    kernel_hrb: dict = field(default_factory=lambda: dict(batch=32, grid=(16, 12), factor=4, width=768))
    kernel_lrb: dict = field(default_factory=lambda: dict(batch=32, tokens=576, width=768))
    tiles: tuple = ((16, 64, 4), (32, 32, 4), (32, 64, 4), (64, 64, 8), (16, 128, 4))
    batch: int = 1
    throughput_batch: int = 32
    warmup: int = 5
    repeats: int = 20
    amp: bool = True
    #: DPC backend of the "kernel" model rows: ``auto`` (the FLOP count runs the model on the CPU,
    #: where ``triton`` would fail); a fallback to the reference shows as a warning in the rows
    kernel_backend: str = "auto"
    eps_h: tuple = (3, 6, 10)
    train_batch: int = 32
    train_steps: tuple = (3, 10)  # warm-up, timed
    #: step -> estimated seconds (a step is skipped when it no longer fits the budget)
    estimates: dict = field(default_factory=lambda: dict(tests=45, kernel=30, bench=120, profile=20, eps_h=45,
                                                         train=40, bench_reference=60, compile=120))

    def overrides(self) -> dict[str, Any]:
        return {} if tuple(self.img_size) == (256, 192) else {"img_size": tuple(self.img_size)}


REAL = Plan()
DRY_RUN = Plan(device="cpu", dry_run=True, budget_s=60.0, backbone="quick", img_size=(64, 48),
               hrb=dict(batch=1, grid=(3, 2), factor=4, width=16), lrb=dict(batch=2, tokens=48, width=16),
               kernel_hrb=dict(batch=1, grid=(2, 2), factor=2, width=16),
               kernel_lrb=dict(batch=1, tokens=32, width=16), tiles=((16, 16, 1),), batch=1, throughput_batch=2,
               warmup=0, repeats=1, amp=False, eps_h=(3, 6), train_batch=2,
               train_steps=(1, 1),
               estimates=dict(tests=15, kernel=8, bench=10, profile=2, eps_h=3, train=3, bench_reference=3,
                              compile=0))


def run_checks(plan: Plan = REAL) -> dict[str, Any]:
    """The correctness checks (those of ``tests/test_cuda.py``), each guarded: name -> result."""
    dev = plan.device
    checks = {
        "kernel_hrb": lambda: check_kernel_hrb(dev, **plan.hrb),
        "kernel_lrb": lambda: check_kernel_lrb(dev, **plan.lrb),
        "runner": lambda: check_runner(dev, plan.test_backbone, plan.img_size),
        "bf16": lambda: check_bf16(dev, plan.test_backbone, plan.img_size),
    }
    return {name: _guarded(fn) for name, fn in checks.items()}


def _guarded(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        return {"error": traceback.format_exc()[-3000:]}


def _failed(value: Any) -> bool:
    """Whether a step value holds an error or a failed check (anywhere inside)."""
    if isinstance(value, dict):
        if "error" in value or value.get("ok") is False:
            return True
        return any(_failed(v) for v in value.values())
    if isinstance(value, list):
        return any(_failed(v) for v in value)
    return False


def _timed_ms(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> float:
    """Median milliseconds of ``fn()`` (CUDA events on CUDA)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            times.append(1000.0 * (time.perf_counter() - t))
    return sorted(times)[len(times) // 2]


class GpuCheck:
    """One run: the steps, the results, and the files written after each step."""

    def __init__(self, plan: Plan, out: Path, bench_path: Path, log: Callable[[str], None] = print) -> None:
        self.plan, self.out, self.bench_path, self._print = plan, out, bench_path, log
        self.dev = torch.device(plan.device)
        self.t0 = time.perf_counter()
        self.res: dict[str, Any] = {}

    # -- helpers ------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def log(self, msg: str) -> None:
        self._print(f"[{self.elapsed():6.1f} s] {msg}")

    def bench_kw(self) -> dict[str, Any]:
        p = self.plan
        return dict(backbone=p.backbone, batch=p.batch, throughput_batch=p.throughput_batch, amp=p.amp,
                    warmup=p.warmup, repeats=p.repeats, overrides=p.overrides())

    def bench_rows(self, jobs: list[tuple[str, str, dict]], backend: str, cuda_graphs: bool) -> dict[str, Any]:
        """``bench_variant`` per ``(label, variant, extra kwargs)``, each guarded."""
        from ftp_pose.bench import bench_variant, pair_speedups

        rows, errors, warned, skipped = [], [], [], []
        for label, name, extra in jobs:
            if self.elapsed() > self.plan.budget_s:
                skipped.append(label)
                self.log(f"  {label} skipped: the budget is spent")
                continue
            try:
                with with_backend(backend), full_fp32_matmul(), warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    row = bench_variant(name, self.dev, cuda_graphs=cuda_graphs, label=label, **self.bench_kw(), **extra)
            except Exception:
                errors.append({"name": label, "error": traceback.format_exc()[-3000:]})
                self.log(f"  {label} failed: {errors[-1]['error'].strip().splitlines()[-1]}")
                continue
            msgs = sorted({f"{w.category.__name__}: {w.message}"[:300] for w in caught})
            if msgs:  # e.g. the kernel failed and auto fell back to the reference
                warned.append({"name": label, "warnings": msgs[:8]})
                self.log(f"  {label} warned: {msgs[:3]}")
            rows.append(row)
            self.log(f"  {label} ({backend}{', graphs' if cuda_graphs else ''}): lat {row['latency_ms']} ms, "
                     f"fps@{self.plan.throughput_batch} {row['fps_throughput']}, dpc {100 * row['dpc_frac']:.1f} % / "
                     f"{100 * row['dpc_frac_throughput']:.1f} %")
            if self.dev.type == "cuda":
                torch.cuda.empty_cache()
        from ftp_pose.bench import FREE

        out: dict[str, Any] = {"dpc_backend": backend, "cuda_graphs": cuda_graphs, "rows": rows,
                               "pairs": pair_speedups([r for r in rows if r["name"] != FREE])}
        if errors:
            out["errors"] = errors
        if warned:
            out["warnings"] = warned
        if skipped:
            out["skipped_rows"] = skipped
        return out

    def bench_json(self, setup: dict[str, Any]) -> dict[str, Any]:
        """``setup``'s rows in the json format of ``python -m ftp_pose bench`` (:func:`ftp_pose.bench.run_bench`)."""
        from ftp_pose.bench import assemble_result

        p = self.plan
        return assemble_result(setup["rows"], device=self.dev, batch=p.batch, throughput_batch=p.throughput_batch,
                               amp=p.amp, backbone=p.backbone,
                               overrides={k: list(v) for k, v in p.overrides().items()}, quick=p.dry_run,
                               compile=False, cuda_graphs=setup["cuda_graphs"], dpc_backend=setup["dpc_backend"],
                               warmup=p.warmup, repeats=p.repeats)

    # -- steps --------------------------------------------------------------------------------
    def step_tests(self) -> dict[str, Any]:
        res = run_checks(self.plan)
        for name, r in res.items():
            status = "ERROR" if "error" in r else "skipped" if r.get("ok") is None else "PASS" if r["ok"] else "FAIL"
            self.log(f"  check {name}: {status}")
        return res

    def step_kernel(self) -> dict[str, Any]:
        from ftp_pose.models.dpc import dpc_knn_scores, dpc_knn_scores_upsampled, num_kept
        from ftp_pose.models.upsample import interp_sparse, upsample_rows

        dev, p = self.dev, self.plan
        why = kernel_unavailable(dev)
        if why:
            return {"ok": None, "skipped": why}
        reps = (3, 10) if dev.type == "cuda" else (0, 1)
        h = p.kernel_hrb
        low, feats = _hrb_case(dev, h["batch"], h["grid"], h["factor"], h["width"], seed=10)
        lrb = torch.randn(p.kernel_lrb["batch"], p.kernel_lrb["tokens"], p.kernel_lrb["width"],
                          generator=torch.Generator().manual_seed(11))
        lrb_dev = lrb.to(dev)
        cases = {
            f"hrb_b{h['batch']}_n{feats.shape[1]}": (
                lambda: dpc_knn_scores_upsampled(low, h["grid"], h["factor"], "bilinear", 5), feats),
            f"lrb_b{lrb.shape[0]}_n{lrb.shape[1]}": (lambda: dpc_knn_scores(lrb_dev, 5), lrb.double()),
        }
        res: dict[str, Any] = {}
        for name, (fn, f) in cases.items():
            def one() -> dict[str, Any]:
                row, outs = {}, {}
                for backend in ("reference", "triton"):
                    with with_backend(backend), full_fp32_matmul():
                        if dev.type == "cuda":
                            torch.cuda.synchronize()
                            torch.cuda.reset_peak_memory_stats()
                            base = torch.cuda.memory_allocated()
                        rho, delta, _ = fn()
                        outs[backend] = (torch.log(rho), delta)
                        if dev.type == "cuda":
                            torch.cuda.synchronize()
                            row[f"{backend}_peak_mib"] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
                        row[f"{backend}_ms"] = round(_timed_ms(fn, dev, *reps), 3)
                cmp = compare_selection(outs["reference"], outs["triton"], num_kept(f.shape[1], 6), f)
                return {**row, "comparison": cmp, "ok": cmp["ok"]}
            res[name] = _guarded(one)
            self.log(f"  kernel {name}: " + json.dumps({k: v for k, v in res[name].items() if k != "comparison"})[:300])
        # tile shapes of the kernel on the HRB case
        def tiles() -> dict[str, Any]:
            from ftp_pose.models.dpc_triton import mixed_gram_dpc

            xf = low - low.mean(1, keepdim=True)
            with full_fp32_matmul():
                gw = upsample_rows(torch.bmm(xf, xf.transpose(1, 2)), h["grid"], h["factor"],
                                   method="matmul").transpose(1, 2).contiguous()
            idx, w = interp_sparse(h["grid"], h["factor"], "bilinear", dev)
            out = {}
            for bm, bn, nw in p.tiles:
                try:
                    out[f"{bm}x{bn}w{nw}"] = round(_timed_ms(
                        lambda: mixed_gram_dpc(gw, idx, w, 5, float(h["width"]), 1.0, bm, bn, nw), dev, *reps), 3)
                except Exception as exc:  # a shape that does not compile here
                    out[f"{bm}x{bn}w{nw}"] = f"{type(exc).__name__}: {exc}"[:200]
            return out
        res["kernel_ms_by_tile"] = _guarded(tiles)
        self.log(f"  kernel tiles: {res['kernel_ms_by_tile']}")
        return res

    def _variants(self) -> list[tuple[str, str, dict]]:
        from ftp_pose.bench import FREE

        # plus ftp_pose keeping evenly spaced tokens: what the DPC selection itself costs
        return [(v, v, {}) for v in ("baseline", "multigrained", "ftp_pose")] + [(FREE, "ftp_pose", {"selection": "even"})]

    def step_bench(self) -> dict[str, Any]:
        res = {"kernel_cuda_graphs": self.bench_rows(self._variants(), self.plan.kernel_backend, True)}
        if res["kernel_cuda_graphs"]["rows"]:
            from ftp_pose.io import write_json

            write_json(self.bench_path, self.bench_json(res["kernel_cuda_graphs"]))
            self.log(f"  wrote {self.bench_path}")
        res["kernel_eager"] = self.bench_rows(self._variants(), self.plan.kernel_backend, False)
        return res

    def step_profile(self) -> dict[str, Any]:
        from torch.profiler import ProfilerActivity, profile

        from ftp_pose.io import write_text
        from ftp_pose.models import build_model

        dev, p = self.dev, self.plan
        cuda = dev.type == "cuda"
        model = build_model("ftp_pose", backbone=p.backbone, **p.overrides()).to(dev).eval()
        cfg = model.config
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        text = []
        for bs in (p.batch, p.throughput_batch):
            x = torch.randn(bs, cfg.num_frames, 3, *cfg.input_size, device=dev)
            amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and p.amp else contextlib.nullcontext()
            with torch.no_grad(), amp, with_backend(p.kernel_backend):
                for _ in range(3 if cuda else 1):
                    model(x)
                if cuda:
                    torch.cuda.synchronize()
                with profile(activities=acts) as prof:
                    for _ in range(5 if cuda else 1):
                        model(x)
                    if cuda:
                        torch.cuda.synchronize()
            text.append(f"== ftp_pose ({p.kernel_backend} DPC, eager) batch {bs}: top {'CUDA' if cuda else 'CPU'} ops\n"
                        + prof.key_averages().table(sort_by="device_time_total" if cuda else "cpu_time_total", row_limit=15))
        path = write_text(self.out / "profile.txt", "\n\n".join(text))
        return {"file": path.name}

    def step_eps_h(self) -> dict[str, Any]:
        jobs = [(f"ftp_pose_h{e}", "ftp_pose", {"eps_h": e}) for e in self.plan.eps_h]
        return self.bench_rows(jobs, self.plan.kernel_backend, True)

    def step_train(self) -> dict[str, Any]:
        from ftp_pose.models import build_model

        dev, p = self.dev, self.plan
        cuda = dev.type == "cuda"
        res: dict[str, Any] = {}
        for name in ("baseline", "multigrained", "ftp_pose"):
            def one() -> dict[str, Any]:
                torch.manual_seed(0)
                m = build_model(name, backbone=p.backbone, **p.overrides()).to(dev).train()
                cfg = m.config
                opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
                x = torch.randn(p.train_batch, cfg.num_frames, 3, *cfg.input_size, device=dev)
                y = torch.rand(p.train_batch, 17, *cfg.heatmap_size, device=dev)
                amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and p.amp else contextlib.nullcontext()

                def step():
                    with amp:
                        loss = ((m(x).float() - y) ** 2).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

                with with_backend(p.kernel_backend):
                    for _ in range(p.train_steps[0]):
                        step()
                    if cuda:
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                    t = time.perf_counter()
                    for _ in range(p.train_steps[1]):
                        step()
                    if cuda:
                        torch.cuda.synchronize()
                dt = (time.perf_counter() - t) / p.train_steps[1]
                row = {"it_per_s": round(1 / dt, 2)}
                if cuda:
                    row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
                return row
            res[name] = _guarded(one)
            self.log(f"  train {name}: {json.dumps(res[name])[:200]}")
            if cuda:
                torch.cuda.empty_cache()
        return res

    def step_bench_reference(self) -> dict[str, Any]:
        return {"reference_eager": self.bench_rows(self._variants(), "reference", False)}

    COMPILE_CHILD = """
import time, torch
from ftp_pose.bench import bench_variant
t = time.perf_counter()
r = bench_variant("ftp_pose", torch.device("cuda"), backbone="base", batch=1, throughput_batch=32, amp=True,
                  warmup=3, repeats=10, compile=True)
print("COMPILE_RESULT", time.perf_counter() - t, r["latency_ms"], r["fps_throughput"], flush=True)
"""

    def step_compile(self) -> dict[str, Any]:
        if self.plan.dry_run:
            return {"skipped": "dry run (compiling takes minutes on the CPU)"}
        left = self.plan.budget_s - self.elapsed()
        t = time.perf_counter()
        path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env = {**os.environ, "PYTHONPATH": path,
               BACKEND_ENV: self.plan.kernel_backend}
        try:
            proc = subprocess.run([sys.executable, "-c", self.COMPILE_CHILD], cwd=ROOT, capture_output=True, text=True,
                                  timeout=max(30.0, min(240.0, left - 10.0)), env=env)
        except subprocess.TimeoutExpired:
            # a measurement (compiling took longer than the time left), not a failure of the check
            return {"timed_out_after_s": round(time.perf_counter() - t, 1)}
        for line in proc.stdout.splitlines():
            if line.startswith("COMPILE_RESULT"):
                _, secs, lat, fps = line.split()
                return {"wall_s_incl_bench": round(float(secs), 1), "latency_ms": float(lat), "fps_throughput": float(fps)}
        return {"error": f"exit {proc.returncode}: {proc.stderr[-1500:]}"}

    STEPS = ("tests", "kernel", "bench", "profile", "eps_h", "train", "bench_reference", "compile")

    # -- run ----------------------------------------------------------------------------------
    def write(self) -> None:
        from ftp_pose.io import write_json, write_text

        self.res["elapsed_s"] = round(self.elapsed(), 1)
        write_json(self.out / "gpu_check.json", self.res)
        write_text(self.out / "gpu_check.md", write_md(self.res))

    def run(self) -> int:
        try:
            import triton

            triton_version = triton.__version__
        except Exception as exc:  # recorded; the kernel checks then fail with the reason
            triton_version = f"not importable: {type(exc).__name__}"
        p = self.plan
        self.out.mkdir(parents=True, exist_ok=True)
        self.res = {"device": torch.cuda.get_device_name(self.dev) if self.dev.type == "cuda" else "cpu",
                    "dry_run": p.dry_run, "torch": torch.__version__, "triton": triton_version,
                    "commit": commit_id(), "plan": asdict(p), "steps": []}
        for name in self.STEPS:
            est = p.estimates.get(name, 0)
            left = p.budget_s - self.elapsed()
            entry: dict[str, Any] = {"name": name}
            if est > left:
                entry.update(status="skipped", note=f"needs about {est} s, {left:.0f} s of the budget left")
                self.log(f"step {name}: skipped ({entry['note']})")
                self.res[name] = {"skipped": entry["note"]}
            else:
                self.log(f"step {name}")
                t = time.perf_counter()
                val = _guarded(getattr(self, f"step_{name}"))
                if isinstance(val, dict) and "error" in val:
                    self.log(f"step {name} failed:\n{val['error']}")
                entry["seconds"] = round(time.perf_counter() - t, 1)
                skipped = isinstance(val, dict) and "skipped" in val
                entry["status"] = "failed" if _failed(val) else "skipped" if skipped else "ok"
                self.res[name] = val
                if self.dev.type == "cuda":
                    torch.cuda.empty_cache()
            self.res["steps"].append(entry)
            self.write()
        failed = [s["name"] for s in self.res["steps"] if s["status"] == "failed"]
        self.res["failed_steps"] = failed
        self.write()
        print(write_md(self.res))
        self.log(f"wrote {self.out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
        return 1 if failed else 0


def commit_id() -> str:
    """The checked-out commit: ``git rev-parse HEAD`` if git works here, else ``$FTP_POSE_COMMIT``, else "unknown"."""
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=20)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("FTP_POSE_COMMIT") or "unknown"


def goals(res: dict) -> list[tuple[str, str, bool | None]]:
    """The issue's goals as (goal, measured, passed), for the rows that ran."""
    out: list[tuple[str, str, bool | None]] = []
    bench = res.get("bench") if isinstance(res.get("bench"), dict) else {}
    for setup in ("kernel_eager", "kernel_cuda_graphs"):
        rows = {r["name"]: r for r in (bench.get(setup) or {}).get("rows", [])}
        ftp, mg, base = rows.get("ftp_pose"), rows.get("multigrained"), rows.get("baseline")
        if ftp and mg:
            r32, r1 = ftp["fps_throughput"] / mg["fps_throughput"], ftp["fps"] / mg["fps"]
            out += [(f"[{setup}] ftp_pose >= 2.2x multigrained FPS @32", f"{r32:.2f}x", r32 >= 2.2),
                    (f"[{setup}] ftp_pose >= 1.5x multigrained FPS @1", f"{r1:.2f}x", r1 >= 1.5)]
        if ftp:
            out.append((f"[{setup}] DPC < 10 % of forward (@1 / @32)",
                        f"{100 * ftp['dpc_frac']:.1f} % / {100 * ftp['dpc_frac_throughput']:.1f} %",
                        max(ftp["dpc_frac"], ftp["dpc_frac_throughput"]) < 0.10))
        if ftp and base:
            rb = ftp["fps_throughput"] / base["fps_throughput"]
            out.append((f"[{setup}] ftp_pose >= 0.6x baseline FPS @32", f"{rb:.2f}x", rb >= 0.6))
    eps = res.get("eps_h") if isinstance(res.get("eps_h"), dict) else {}
    fps = [r["fps_throughput"] for r in eps.get("rows", [])]
    if len(fps) >= 2:
        out.append(("higher eps_h never slower (FPS @32 by eps_h, 3 % noise allowed)", " / ".join(f"{v:.0f}" for v in fps),
                    all(b >= 0.97 * a for a, b in zip(fps, fps[1:]))))
    train = res.get("train") if isinstance(res.get("train"), dict) else {}
    if "it_per_s" in (train.get("ftp_pose") or {}) and "it_per_s" in (train.get("multigrained") or {}):
        a, b = train["ftp_pose"]["it_per_s"], train["multigrained"]["it_per_s"]
        out.append(("training step at least as fast as multigrained", f"{a} vs {b} it/s", a >= b))
    return out


def _bench_tables(title: str, setup: dict) -> list[str]:
    lines = ["", f"## {title} (DPC {setup.get('dpc_backend')}, CUDA graphs {setup.get('cuda_graphs')})", "",
             "| variant | GFLOPs | latency (ms) | FPS @1 | FPS @32 | DPC @1 | DPC @32 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in setup.get("rows", []):
        lines.append(f"| {r['name']} | {r['gflops']:.1f} | {r['latency_ms']:.2f} | {r['fps']:.1f} | "
                     f"{r['fps_throughput']:.1f} | "
                     f"{100 * r['dpc_frac']:.1f} % | {100 * r['dpc_frac_throughput']:.1f} % |")
    for e in setup.get("errors", []):
        lines.append(f"| {e['name']} | error: {e['error'].strip().splitlines()[-1][:150]} | | | | | |")
    for w in setup.get("warnings", []):
        lines.append(f"| {w['name']} | warnings: {'; '.join(w['warnings'])[:300]} | | | | | |")
    if setup.get("pairs"):
        lines += ["", "| a vs b | FLOP ratio | speed-up @1 | eff. @1 | speed-up @32 | eff. @32 |",
                  "|---|---:|---:|---:|---:|---:|"]
        for p in setup["pairs"]:
            lines.append(f"| {p['a']} vs {p['b']} | {p['flop_ratio']:.2f} | {p['speedup']:.2f} | "
                         f"{p['efficiency']:.2f} | {p['speedup_throughput']:.2f} | {p['efficiency_throughput']:.2f} |")
    return lines


def write_md(res: dict) -> str:
    """The markdown report: steps, checks, goals, bench tables, and the other steps as json."""
    lines = [f"# GPU check{' (DRY RUN)' if res.get('dry_run') else ''} ({res.get('device')}, torch {res.get('torch')}, "
             f"triton {res.get('triton')}, commit {res.get('commit')})", "", "| step | status | seconds | note |",
             "|---|---|---:|---|"]
    for s in res.get("steps", []):
        lines.append(f"| {s['name']} | {s['status']} | {s.get('seconds', '')} | {s.get('note', '')} |")
    tests = res.get("tests")
    if isinstance(tests, dict) and "error" not in tests:
        lines += ["", "## Checks", ""]
        for name, r in tests.items():
            status = "ERROR" if "error" in r else "skipped" if r.get("ok") is None else "PASS" if r["ok"] else "FAIL"
            extra = ""
            if "counts" in r:
                extra = (f" {r['case']}: swapped {r['tokens_swapped']} {r['counts']}, max |d log rho| "
                         f"{r['max_abs_log_rho_diff']:.2e}, max rel d delta (untied) {r['max_rel_delta_diff_untied']:.2e}")
            lines.append(f"- {status}: {name}{extra}")
    gl = goals(res)
    if gl:
        lines += ["", "## Goals of issue 12", ""]
        lines += [f"- {'PASS' if ok else 'FAIL'}: {goal}: {value}" for goal, value, ok in gl]
    for step in ("bench", "bench_reference"):
        val = res.get(step)
        if isinstance(val, dict):
            for setup, v in val.items():
                if isinstance(v, dict) and "rows" in v:
                    lines += _bench_tables(setup, v)
    if isinstance(res.get("eps_h"), dict) and "rows" in res["eps_h"]:
        lines += _bench_tables("eps_h sweep", res["eps_h"])
    for key in ("kernel", "train", "compile"):
        if key in res:
            lines += ["", f"## {key}", "", "```", json.dumps(res.get(key), indent=1)[:6000], "```"]
    return "\n".join(lines) + "\n"


def run_gpu_check(dry_run: bool = False, out: str | os.PathLike | None = None, budget_s: float | None = None) -> int:
    """Run the check (see the module doc); returns the exit code."""
    plan = DRY_RUN if dry_run else REAL
    if budget_s is not None:
        plan = replace(plan, budget_s=float(budget_s))
    if not dry_run and not torch.cuda.is_available():
        print("gpu-check: no CUDA device (use --dry-run to run the steps at tiny sizes on the CPU)", file=sys.stderr)
        return 2
    base = out or os.environ.get("OUT") or None
    if base:
        folder, bench_path = Path(base), Path(base) / "figures" / "bench_cuda.json"
    elif dry_run:
        folder = figures_dir() / "gpu_check_dry_run"
        bench_path = folder / "figures" / "bench_cuda.json"
    else:
        folder, bench_path = figures_dir() / "gpu_check", figures_dir() / "bench_cuda.json"
    check = GpuCheck(plan, folder, bench_path, log=lambda m: print(m, flush=True))
    if dry_run:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    return check.run()


def add_cli_arguments(parser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny sizes on the CPU (kernel through TRITON_INTERPRET=1): checks the run itself")
    parser.add_argument("--out", default=None, help="output folder (default $OUT, else figures/gpu_check/)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for all steps (default 420, dry run 60): a step that no longer fits is skipped")


def run_cli(args) -> int:
    if args.dry_run and "ftp_pose.models.dpc_triton" not in sys.modules:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernel module loads
    return run_gpu_check(dry_run=args.dry_run, out=args.out, budget_s=args.budget)


if __name__ == "__main__":
    import argparse

    _parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cli_arguments(_parser)
    sys.exit(run_cli(_parser.parse_args()))
