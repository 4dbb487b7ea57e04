"""One-call GPU check of the DPC kernel, the matmul upsampling and CUDA graphs (issue 12).

Run from the repository root on a machine with a CUDA GPU (about 5-7 minutes on an H100)::

    python3 -m ftp_pose gpu-check        # outputs to $OUT if set, else figures/gpu_check/

Written for torch >= 2.4 / triton >= 3.0 (the GPU machine had torch 2.11, triton 3.6). Steps,
each guarded (a failing step is recorded and the next one runs):

1. ``kernel``: Triton kernel vs the PyTorch reference on CUDA at real sizes: HRB (B = 32,
   192 tokens of width 768 upsampled x4 to N = 3072) and LRB (B = 32, N = 576, C = 768):
   max |log rho| / |delta| differences, kept tokens (same features), time and peak memory of
   each, and the kernel time for a few tile shapes.
2. ``bench``: the three variants (base backbone, bf16) at batch 1 and 32 in three setups:
   reference DPC eager (about the "before"), kernel eager, kernel + CUDA graphs; plus ftp_pose
   at eps_h 3 / 6 / 10 (kernel + CUDA graphs) for "higher eps_h is never slower".
3. ``profile``: torch.profiler top CUDA ops of ftp_pose (kernel, eager) at batch 1 and 32.
4. ``train``: forward + backward + AdamW steps per second at batch 32 (train_step_probe).
5. ``compile``: seconds to compile ftp_pose with ``mode="reduce-overhead"`` (skipped when less
   than 2 minutes of the 8-minute budget are left), in a subprocess with a time limit.

Writes ``gpu_check.json`` (everything), ``gpu_check.md`` (tables and the issue's goals with
pass / fail) and ``profile.txt`` to the output folder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

from ftp_pose.paths import REPO_ROOT as ROOT

BUDGET_S = 480.0
T0 = time.perf_counter()
OUT = Path(os.environ.get("OUT") or ROOT / "figures" / "gpu_check")


def elapsed() -> float:
    return time.perf_counter() - T0


def log(msg: str) -> None:
    print(f"[{elapsed():6.1f} s] {msg}", flush=True)


def cuda_ms(fn, warmup: int = 3, repeats: int = 10) -> float:
    """Median CUDA-event milliseconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def with_backend(backend: str, fn):
    from ftp_pose.models.dpc import BACKEND_ENV

    old = os.environ.get(BACKEND_ENV)
    os.environ[BACKEND_ENV] = backend
    try:
        return fn()
    finally:
        if old is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = old


def step_kernel() -> dict:
    from ftp_pose.models import dpc
    from ftp_pose.models.dpc_triton import mixed_gram_dpc
    from ftp_pose.models.upsample import interp_sparse, upsample_rows, upsample_tokens

    dev = torch.device("cuda")
    torch.manual_seed(0)
    res: dict = {}
    grid, f = (16, 12), 4
    low = torch.randn(32, 192, 768, device=dev)
    lrb = torch.randn(32, 576, 768, device=dev)
    cases = {
        "hrb_b32_n3072": (lambda: dpc._dpc_upsampled_log_density_delta(low, grid, f, "bilinear", 5, None, False, None),
                          3072, lambda: upsample_tokens(low - low.mean(1, keepdim=True), grid, f)),
        "lrb_b32_n576": (lambda: dpc._dpc_log_density_delta(lrb, 5, None, False, None), 576,
                         lambda: lrb - lrb.mean(1, keepdim=True)),
    }
    for name, (fn, n, feats) in cases.items():
        out = {}
        for backend in ("reference", "triton"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            lr, de = with_backend(backend, fn)
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
            ms = with_backend(backend, lambda: cuda_ms(fn))
            out[backend] = (lr, de, ms, peak)
        (lr0, d0, ms0, p0), (lr1, d1, ms1, p1) = out["reference"], out["triton"]
        m = dpc.num_kept(n, 6)
        i0, _ = dpc._select(lr0, d0, m)
        i1, _ = dpc._select(lr1, d1, m)
        x = feats()
        key = [torch.sort(dpc.gather_tokens(x, i)[..., :4].sum(-1), dim=1).values for i in (i0, i1)]
        res[name] = {
            "max_abs_log_rho_diff": float((lr0 - lr1).abs().max()),
            "max_rel_delta_diff": float(((d0 - d1).abs() / d0.abs().clamp_min(1e-6)).max()),
            "kept_index_equal_fraction": float((i0 == i1).float().mean()),
            "kept_features_equal": bool(torch.allclose(key[0], key[1], rtol=1e-4, atol=1e-4)),
            "reference_ms": round(ms0, 3), "kernel_ms": round(ms1, 3),
            "reference_peak_mib": round(p0, 1), "kernel_peak_mib": round(p1, 1),
        }
        log(f"kernel {name}: {res[name]}")
    # tile shapes of the kernel on the HRB case
    xf = low - low.mean(1, keepdim=True)
    gw = upsample_rows(torch.bmm(xf, xf.transpose(1, 2)), grid, f, method="matmul").transpose(1, 2).contiguous()
    idx, w = interp_sparse(grid, f, "bilinear", dev)
    tiles = {}
    for bm, bn, nw in ((16, 64, 4), (32, 32, 4), (32, 64, 4), (64, 64, 8), (16, 128, 4)):
        try:
            tiles[f"{bm}x{bn}w{nw}"] = round(cuda_ms(lambda: mixed_gram_dpc(gw, idx, w, 5, 768.0, 1.0, bm, bn, nw)), 3)
        except Exception as exc:  # a shape that does not compile here
            tiles[f"{bm}x{bn}w{nw}"] = f"{type(exc).__name__}: {exc}"[:200]
    res["hrb_kernel_ms_by_tile"] = tiles
    log(f"kernel tiles: {tiles}")
    return res


def step_bench() -> dict:
    from ftp_pose.bench import bench_variant, pair_speedups

    dev = torch.device("cuda")
    kw = dict(backbone="base", batch=1, throughput_batch=32, amp=True, warmup=5, repeats=20)
    setups = {"reference_eager": ("reference", False), "kernel_eager": ("auto", False),
              "kernel_cuda_graphs": ("auto", True)}
    res: dict = {}
    for setup, (backend, graphs) in setups.items():
        rows = []
        for name in ("baseline", "multigrained", "ftp_pose"):
            row = with_backend(backend, lambda: bench_variant(name, dev, cuda_graphs=graphs, **kw))
            rows.append(row)
            log(f"bench {setup} {name}: lat {row['latency_ms']} ms, fps@32 {row['fps_throughput']}, "
                f"dpc {100 * row['dpc_frac']:.1f} % / {100 * row['dpc_frac_throughput']:.1f} %")
        res[setup] = {"rows": rows, "pairs": pair_speedups(rows)}
    eps_rows = []
    for eps_h in (3, 6, 10):
        eps_rows.append(bench_variant("ftp_pose", dev, eps_h=eps_h, cuda_graphs=True, label=f"ftp_pose_h{eps_h}", **kw))
        log(f"bench eps_h {eps_h}: fps@32 {eps_rows[-1]['fps_throughput']}, lat {eps_rows[-1]['latency_ms']}")
    res["eps_h_cuda_graphs"] = eps_rows
    return res


def step_profile() -> str:
    from torch.profiler import ProfilerActivity, profile

    from ftp_pose.models import build_model

    dev = torch.device("cuda")
    model = build_model("ftp_pose", backbone="base").to(dev).eval()
    text = []
    for bs in (1, 32):
        x = torch.randn(bs, 3, 3, 256, 192, device=dev)
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            for _ in range(3):
                model(x)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    model(x)
                torch.cuda.synchronize()
        text.append(f"== ftp_pose (kernel, eager) batch {bs}: top CUDA ops (5 forwards)\n"
                    + prof.key_averages().table(sort_by="cuda_time_total", row_limit=15))
    return "\n\n".join(text)


def step_train() -> dict:
    from ftp_pose.models import build_model

    dev = torch.device("cuda")
    res = {}
    for name in ("baseline", "multigrained", "ftp_pose"):
        torch.manual_seed(0)
        m = build_model(name, backbone="base").to(dev).train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
        x = torch.randn(32, 3, 3, 256, 192, device=dev)
        y = torch.rand(32, 17, 64, 48, device=dev)

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = ((m(x).float() - y) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(3):
            step()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            step()
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t) / 10
        res[name] = {"it_per_s": round(1 / dt, 2), "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)}
        log(f"train {name}: {res[name]}")
        del m, opt
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return res


COMPILE_CHILD = """
import time, torch
from ftp_pose.bench import bench_variant
t = time.perf_counter()
r = bench_variant("ftp_pose", torch.device("cuda"), backbone="base", batch=1, throughput_batch=32, amp=True,
                  warmup=3, repeats=10, compile=True)
print("COMPILE_RESULT", time.perf_counter() - t, r["latency_ms"], r["fps_throughput"], flush=True)
"""


def step_compile() -> dict:
    left = BUDGET_S - elapsed()
    if left < 120:
        return {"skipped": f"only {left:.0f} s of the budget left"}
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", COMPILE_CHILD], cwd=ROOT, capture_output=True, text=True,
                              timeout=min(240.0, left - 20), env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        return {"timed_out_after_s": round(time.perf_counter() - t, 1)}
    for line in proc.stdout.splitlines():
        if line.startswith("COMPILE_RESULT"):
            _, secs, lat, fps = line.split()
            return {"wall_s_incl_bench": round(float(secs), 1), "latency_ms": float(lat), "fps_throughput": float(fps)}
    return {"failed": proc.stderr[-1500:]}


def goals(res: dict) -> list[tuple[str, str, bool | None]]:
    """The issue's goals as (goal, measured, passed)."""
    out: list[tuple[str, str, bool | None]] = []
    bench = res.get("bench")
    if not isinstance(bench, dict) or "kernel_cuda_graphs" not in bench:
        return out
    for setup in ("kernel_eager", "kernel_cuda_graphs"):
        rows = {r["name"]: r for r in bench[setup]["rows"]}
        ftp, mg, base = rows["ftp_pose"], rows["multigrained"], rows["baseline"]
        r32 = ftp["fps_throughput"] / mg["fps_throughput"]
        r1 = ftp["fps"] / mg["fps"]
        rb = ftp["fps_throughput"] / base["fps_throughput"]
        out += [(f"[{setup}] ftp_pose >= 2.2x multigrained FPS @32", f"{r32:.2f}x", r32 >= 2.2),
                (f"[{setup}] ftp_pose >= 1.5x multigrained FPS @1", f"{r1:.2f}x", r1 >= 1.5),
                (f"[{setup}] DPC < 10 % of forward (@1 / @32)",
                 f"{100 * ftp['dpc_frac']:.1f} % / {100 * ftp['dpc_frac_throughput']:.1f} %",
                 max(ftp["dpc_frac"], ftp["dpc_frac_throughput"]) < 0.10),
                (f"[{setup}] ftp_pose >= 0.6x baseline FPS @32", f"{rb:.2f}x", rb >= 0.6)]
    fps = [r["fps_throughput"] for r in bench["eps_h_cuda_graphs"]]
    out.append(("higher eps_h never slower (eps_h 3/6/10 FPS @32, 3 % noise allowed)", " / ".join(f"{v:.0f}" for v in fps),
                all(b >= 0.97 * a for a, b in zip(fps, fps[1:]))))
    train = res.get("train")
    if isinstance(train, dict) and "ftp_pose" in train:
        a, b = train["ftp_pose"]["it_per_s"], train["multigrained"]["it_per_s"]
        out.append(("training step at least as fast as multigrained", f"{a} vs {b} it/s", a >= b))
    return out


def write_md(res: dict) -> str:
    lines = [f"# GPU check ({res['device']}, torch {res['torch']}, triton {res['triton']})", ""]
    for goal, value, ok in goals(res):
        lines.append(f"- {'PASS' if ok else 'FAIL'}: {goal}: {value}")
    bench = res.get("bench")
    if isinstance(bench, dict):
        for setup, val in bench.items():
            if setup == "eps_h_cuda_graphs":
                continue
            lines += ["", f"## {setup}", "", "| variant | GFLOPs | latency (ms) | FPS @32 | DPC @1 | DPC @32 |",
                      "|---|---:|---:|---:|---:|---:|"]
            for r in val["rows"]:
                lines.append(f"| {r['name']} | {r['gflops']:.1f} | {r['latency_ms']:.2f} | {r['fps_throughput']:.1f} | "
                             f"{100 * r['dpc_frac']:.1f} % | {100 * r['dpc_frac_throughput']:.1f} % |")
            lines += ["", "| a vs b | FLOP ratio | speed-up @1 | eff. @1 | speed-up @32 | eff. @32 |",
                      "|---|---:|---:|---:|---:|---:|"]
            for p in val["pairs"]:
                lines.append(f"| {p['a']} vs {p['b']} | {p['flop_ratio']:.2f} | {p['speedup']:.2f} | "
                             f"{p['efficiency']:.2f} | {p['speedup_throughput']:.2f} | {p['efficiency_throughput']:.2f} |")
    for key in ("kernel", "train", "compile"):
        lines += ["", f"## {key}", "", "```", json.dumps(res.get(key), indent=1), "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device", file=sys.stderr)
        return 2
    import triton

    OUT.mkdir(parents=True, exist_ok=True)
    res: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
                 "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                          text=True).stdout.strip()}
    for name, fn in (("kernel", step_kernel), ("bench", step_bench), ("profile", step_profile),
                     ("train", step_train), ("compile", step_compile)):
        log(f"step {name}")
        try:
            val = fn()
        except Exception:
            val = {"error": traceback.format_exc()[-3000:]}
            log(f"step {name} failed:\n{val['error']}")
        if name == "profile" and isinstance(val, str):
            (OUT / "profile.txt").write_text(val)
            val = "profile.txt"
        res[name] = val
        res["elapsed_s"] = round(elapsed(), 1)
        (OUT / "gpu_check.json").write_text(json.dumps(res, indent=1))
        torch.cuda.empty_cache()
    (OUT / "gpu_check.md").write_text(write_md(res))
    print(write_md(res))
    log(f"wrote {OUT}")
    return 0


def add_cli_arguments(parser) -> None:
    """The ``gpu-check`` command takes no options (outputs go to ``$OUT`` or figures/gpu_check/)."""


def run_cli(args) -> int:
    return main()


if __name__ == "__main__":
    sys.exit(main())
