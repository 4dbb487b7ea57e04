"""The bench command in quick mode: table and json shape, pruned FLOPs below unpruned."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from ftp_pose.paths import REPO_ROOT


def test_quick_bench_cli(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "ftp_pose", "bench", "--quick", "--device", "cpu",
                           "--out", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| variant | params (M) | GFLOPs |" in proc.stdout
    assert "| ftp_pose |" in proc.stdout and "GFLOPs per part" in proc.stdout
    res = json.loads(out.read_text())
    assert res["device"] and res["amp"] is False and res["batch"] == 1
    rows = {r["name"]: r for r in res["rows"]}
    assert set(rows) == {"baseline", "multigrained", "ftp_pose"}
    for r in rows.values():
        for key in ("params_m", "gflops", "latency_ms", "fps", "dpc_ms", "fps_throughput"):
            assert isinstance(r[key], (int, float)) and r[key] >= 0, (r["name"], key)
        parts = r["breakdown_gflops"]
        assert abs(sum(parts.values()) - r["gflops"]) < 0.01 * r["gflops"] + 0.01
        assert parts["backbone"] > 0 and parts["head"] > 0
    assert rows["ftp_pose"]["gflops"] < rows["multigrained"]["gflops"]
    assert rows["ftp_pose"]["breakdown_gflops"]["refine"] < rows["multigrained"]["breakdown_gflops"]["refine"]
    assert rows["ftp_pose"]["params_m"] == rows["multigrained"]["params_m"]
    assert rows["ftp_pose"]["dpc_ms"] > 0 and rows["multigrained"]["dpc_ms"] == 0
    assert res["speedup"]["ftp_pose_vs_multigrained"]["flops"] > 1
    # DPC share at both batches, the runner used, and one entry per pair of variants
    assert res["dpc_backend"] in ("auto", "reference", "triton") and res["cuda_graphs"] is False
    for r in rows.values():
        assert r["runner"] == "eager"
        for key in ("dpc_ms_throughput", "dpc_frac", "dpc_frac_throughput"):
            assert isinstance(r[key], (int, float)) and r[key] >= 0, (r["name"], key)
    assert rows["ftp_pose"]["dpc_ms_throughput"] > 0 and 0 < rows["ftp_pose"]["dpc_frac_throughput"] <= 1
    pairs = {(p["a"], p["b"]): p for p in res["pairs"]}
    assert set(pairs) == {("multigrained", "baseline"), ("ftp_pose", "baseline"), ("ftp_pose", "multigrained")}
    for (a, b), p in pairs.items():
        assert math.isclose(p["flop_ratio"], rows[b]["gflops"] / rows[a]["gflops"], rel_tol=1e-3)
        for tag in ("", "_throughput"):
            assert math.isclose(p[f"speedup{tag}"], rows[a][f"fps{tag}"] / rows[b][f"fps{tag}"], rel_tol=1e-3)
            assert math.isclose(p[f"efficiency{tag}"], p[f"speedup{tag}"] / p["flop_ratio"], rel_tol=1e-3)
    assert "efficiency" in proc.stdout


def test_fast_runner_flags_fall_back_on_cpu(tmp_path: Path) -> None:
    """--cuda-graphs / --compile are harmless without CUDA: eager, with a message."""
    import torch

    from ftp_pose.models.runner import make_runner

    model = torch.nn.Linear(3, 2)
    for mode in ("cuda_graphs", "compile"):
        runner, used, message = make_runner(model, "cpu", mode)
        assert runner is model and used == "eager" and mode in message
    assert make_runner(model, "cpu", "eager") == (model, "eager", "")
