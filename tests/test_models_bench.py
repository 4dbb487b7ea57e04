"""The bench command in quick mode: table and json shape, pruned FLOPs below unpruned."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ftp_pose.paths import REPO_ROOT


def test_quick_bench_cli(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "ftp_pose", "bench", "--quick", "--device", "cpu",
                           "--out", str(out)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=900)  # about 30-70 s on a busy 2-core machine; room for a loaded CI runner
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| variant | params (M) | GFLOPs |" in proc.stdout
    assert "| ftp_pose |" in proc.stdout and "GFLOPs per part" in proc.stdout
    res = json.loads(out.read_text())
    assert res["device"] and res["amp"] is False and res["batch"] == 1
    rows = {r["name"]: r for r in res["rows"]}
    assert set(rows) == {"baseline", "multigrained", "ftp_pose", "ftp_pose_free_selection"}
    free = rows.pop("ftp_pose_free_selection")  # the same model keeping evenly spaced tokens: no DPC cost
    assert free["gflops"] <= rows["ftp_pose"]["gflops"] and free["selection"] == "even"
    assert free["dpc_ms"] < rows["ftp_pose"]["dpc_ms"]
    for tag, key in (("", "batch"), ("_throughput", "throughput")):
        want = 1 - free[f"latency{tag}_ms"] / rows["ftp_pose"][f"latency{tag}_ms"]
        assert math.isclose(res["selection_cost"][key], want, rel_tol=1e-3, abs_tol=1e-3)
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
    assert res["dpc_backend"] in ("auto", "reference", "cpu", "triton") and res["cuda_graphs"] is False
    for r in rows.values():
        assert r["runner"] == "eager"
        for key in ("dpc_ms_throughput", "dpc_frac", "dpc_frac_throughput"):
            assert isinstance(r[key], (int, float)) and r[key] >= 0, (r["name"], key)
    assert rows["ftp_pose"]["dpc_ms_throughput"] > 0 and 0 < rows["ftp_pose"]["dpc_frac_throughput"] <= 1
    pairs = {(p["a"], p["b"]): p for p in res["pairs"]}
    assert set(pairs) == {("multigrained", "baseline"), ("ftp_pose", "baseline"), ("ftp_pose", "multigrained")}
    for (a, b), p in pairs.items():  # every ratio from the rows' own fields, none from the pair's other entries
        flop_ratio = rows[b]["gflops"] / rows[a]["gflops"]
        assert math.isclose(p["flop_ratio"], flop_ratio, rel_tol=1e-3)
        for tag in ("", "_throughput"):
            speedup = rows[a][f"fps{tag}"] / rows[b][f"fps{tag}"]
            assert math.isclose(p[f"speedup{tag}"], speedup, rel_tol=1e-3, abs_tol=1e-4)  # rounded to 4 decimals
            assert math.isclose(p[f"efficiency{tag}"], speedup / flop_ratio, rel_tol=1e-3)
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


# ----------------------------------------------------------------------------- count_flops against hand counts
# A multiply-add counts 2: a Linear C_in -> C_out on M tokens is 2 M C_in C_out; attention over N
# tokens of width C (any number of heads) is 2 N^2 C for Q K^T plus 2 N^2 C for the weighted sum of V.

def _block_flops(n: int, c: int, mlp_ratio: int = 4) -> int:
    """A pre-norm ViT block on ``n`` tokens of width ``c``: qkv, attention, projection, 2-layer MLP."""
    return 2 * n * c * 3 * c + 4 * n * n * c + 2 * n * c * c + 2 * 2 * n * c * (mlp_ratio * c)


def test_count_flops_of_a_linear_layer() -> None:
    import torch

    from ftp_pose.bench import count_flops

    m, n, k = 5, 7, 3
    total, parts = count_flops(torch.nn.Linear(n, k), torch.zeros(m, n))
    assert total == 2 * m * n * k == 210
    assert parts["other"] == total and sum(v for p, v in parts.items() if p != "other") == 0


def test_count_flops_of_an_attention_block() -> None:
    """Self-attention through F.scaled_dot_product_attention (the CPU kernel is not in PyTorch's table)."""
    import torch
    from timm.models.vision_transformer import Block

    from ftp_pose.bench import count_flops

    b, n, c = 2, 10, 16
    block = Block(c, num_heads=2, mlp_ratio=4.0, qkv_bias=True).eval()
    total, _ = count_flops(block, torch.zeros(b, n, c))
    assert total == b * _block_flops(n, c) == b * (24 * n * c * c + 4 * n * n * c)


def test_count_flops_parts_of_a_tiny_multigrained_model() -> None:
    """Every part of a tiny model (no pruning) against its hand count; the parts sum to the total."""
    import torch

    from ftp_pose.bench import count_flops
    from ftp_pose.models import build_model

    c, t, patch, joints = 32, 3, 16, 17
    torch.manual_seed(0)
    model = build_model("multigrained", backbone="quick", img_size=(64, 48), embed_dim=c, num_heads=2, depth=1,
                        lrb_depth=1, refine_depth=1).eval()
    n = (64 // patch) * (48 // patch)           # 4 x 3 tokens per frame
    nh = (64 // 4) * (48 // 4)                  # the 16 x 12 high-resolution grid (= heatmap size)
    total, parts = count_flops(model, torch.zeros(1, t, 3, 64, 48))
    hand = {
        "backbone": t * (2 * n * (3 * patch * patch) * c + _block_flops(n, c)),  # patch embedding + 1 block per frame
        "lrb": _block_flops(t * n, c),                                           # joint attention over all frames
        "hrb_upsample": 2 * n * c * c,                                           # key-frame projection (then bilinear)
        "dpc": 0,                                                                # eps 1: nothing to select
        "refine": _block_flops(nh, c) + _block_flops(t * n, c),                  # the shared block, on each branch
        # cross-attention: q on the grid, k and v on all [F_h; F_l] tokens, projection, MLP (ratio 2)
        "fusion": 2 * nh * c * c + 2 * (nh + t * n) * c * 2 * c + 4 * nh * (nh + t * n) * c + 2 * nh * c * c
                  + 2 * 2 * nh * c * 2 * c,
        "head": 2 * nh * c * joints,                                             # a Linear per heatmap pixel
    }
    assert {k: parts[k] for k in hand} == hand
    assert parts["other"] == 0 and total == sum(hand.values())


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_count_flops_of_the_dpc_do_not_depend_on_the_backend(monkeypatch, backend) -> None:
    """The DPC's count is its reference's matrix products whatever backend the environment asks for
    (the compiled loops are invisible to the counter): the LRB's distances 2 N^2 C, the HRB's
    low-resolution Gram matrix 2 m^2 C (its upsampled mixes are gathers, not counted)."""
    import torch

    from ftp_pose.bench import count_flops
    from ftp_pose.models import build_model
    from ftp_pose.models import dpc as dpc_mod

    monkeypatch.setenv(dpc_mod.BACKEND_ENV, backend)
    c, t = 32, 3
    torch.manual_seed(0)
    model = build_model("ftp_pose", backbone="quick", img_size=(64, 48), embed_dim=c, num_heads=2, depth=1,
                        lrb_depth=1, refine_depth=1, eps_h=6, eps_l=6).eval()
    n = t * (64 // 16) * (48 // 16)             # LRB tokens: 4 x 3 per frame, all frames
    m = (64 // 16) * (48 // 16)                 # the HRB prunes the upsampled key-frame tokens of a 4 x 3 grid
    _, parts = count_flops(model, torch.zeros(1, t, 3, 64, 48))
    assert parts["dpc"] == 2 * n * n * c + 2 * m * m * c
