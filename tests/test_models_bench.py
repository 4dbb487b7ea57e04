"""The bench command in quick mode: table and json shape, pruned FLOPs below unpruned."""
from __future__ import annotations

import json
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
