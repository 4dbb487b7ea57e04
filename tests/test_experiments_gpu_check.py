"""The GPU check on the CPU: the selection comparison, the CUDA-graph runner's cache key and batch
buckets (with a faked capture), and ``gpu-check --dry-run`` end to end in a subprocess that cannot
import pycocotools, plotly, ipywidgets or OpenCV and has no ``git``, as on the GPU machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils._pytree import tree_leaves

from ftp_pose.experiments.gpu_check import DRY_RUN, GpuCheck, compare_selection
from ftp_pose.models import build_model
from ftp_pose.models.dpc import BACKEND_ENV, DPCPruning
from ftp_pose.models.runner import CudaGraphRunner, batch_bucket
from ftp_pose.paths import REPO_ROOT

# ------------------------------------------------------------------------------------------------
# compare_selection on hand-made scores: 6 tokens on a line, keep 3
# ------------------------------------------------------------------------------------------------

FEATS = torch.tensor([[0.0], [1.0], [10.0], [20.0], [30.0], [40.0]]).unsqueeze(0)  # 1 x 6 x 1


def _scores(lr: list[float], delta: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([lr]), torch.tensor([delta])


LR = [-1.0, -1.0 + 5e-6, -2.0, -3.0, -4.0, -5.0]  # tokens 0 and 1: a density near-tie, 1 apart


def test_identical_results_agree() -> None:
    ref = _scores(LR, [1.0, 50.0, 10.0, 10.0, 10.0, 10.0])
    res = compare_selection(ref, ref, 3, FEATS)
    assert res["ok"] and res["tokens_swapped"] == 0 and res["kept_sets_equal_fraction"] == 1.0


def test_density_near_tie_swap_is_named_not_failed() -> None:
    # reference: 1 is denser, so delta_0 = d(0, 1) = 1; new: 0 is denser, so delta_1 = 1
    ref = _scores(LR, [1.0, 50.0, 10.0, 10.0, 10.0, 10.0])  # keeps 1, 2, 3
    new = _scores(LR, [50.0, 1.0, 10.0, 10.0, 10.0, 10.0])  # keeps 0, 2, 3
    res = compare_selection(ref, new, 3, FEATS)
    assert res["ok"], res
    assert res["counts"]["near_tie_density"] == 2 and res["tokens_swapped"] == 2
    assert {s.get("ref", s.get("new")) for s in res["swaps"]} == {0, 1}
    # delta is compared on the untied tokens only: 0 and 1 differ 50x, the rest agree
    assert res["max_rel_delta_diff_untied"] == 0.0 and res["tied_fraction"] == pytest.approx(2 / 6, abs=1e-4)
    # the same swap without a near-tie (log rho 1e-3 apart) is a real disagreement
    far = [-1.0, -1.001] + LR[2:]
    res = compare_selection(_scores(far, ref[1][0].tolist()), _scores(far, new[1][0].tolist()), 3, FEATS)
    assert not res["ok"] and res["counts"]["unexplained"] == 2


def test_token_displaced_by_a_near_tie_is_named() -> None:
    # new: 0 gains the large delta and 1 keeps its own: both kept, 3 (the lowest kept) drops out
    ref = _scores(LR, [1.0, 50.0, 10.0, 10.0, 10.0, 10.0])  # keeps 1, 2, 3
    new = _scores(LR, [50.0, 50.0, 10.0, 10.0, 10.0, 10.0])  # keeps 0, 1, 2
    res = compare_selection(ref, new, 3, FEATS)
    assert res["ok"], res
    assert res["counts"]["near_tie_density"] == 1 and res["counts"]["displaced"] == 1
    assert {"kind": "displaced", "batch": 0, "ref": 3} in res["swaps"]


def test_score_near_tie_and_real_swap() -> None:
    lr = [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]
    delta = torch.tensor([[9.0, 9.0, 9.0, 9.0, 9.0, 9.0]])
    # tokens 2 and 3 at the boundary, scores 1e-6 apart (relative), in opposite order on each side
    d_ref, d_new = delta.clone(), delta.clone()
    d_ref[0, 3] = d_ref[0, 2] * torch.e * (1 - 1e-6)  # score_3 just below score_2
    d_new[0, 3] = d_new[0, 2] * torch.e * (1 + 1e-6)  # score_3 just above score_2
    res = compare_selection((torch.tensor([lr]), d_ref), (torch.tensor([lr]), d_new), 3, FEATS * 100)
    assert res["ok"], res
    assert res["counts"]["near_tie_score"] == 1 and res["swaps"][0]["ref"] == 2 and res["swaps"][0]["new"] == 3
    # a kernel that halves one kept token's delta drops it for a clearly lower one: caught twice
    d_bad = delta.clone()
    d_bad[0, 2] = 0.1
    res = compare_selection((torch.tensor([lr]), delta), (torch.tensor([lr]), d_bad), 3, FEATS * 100)
    assert not res["ok"] and res["counts"]["unexplained"] == 2
    assert res["max_rel_delta_diff_untied"] == pytest.approx(1 - 0.1 / 9.0)


def test_exact_duplicates_swapped() -> None:
    feats = FEATS.clone()
    feats[0, 4] = feats[0, 3]  # 4 is an exact copy of 3
    lr = [-1.0, -2.0, -3.0, -4.0, -4.0, -6.0]
    ref = _scores(lr, [9.0, 9.0, 9.0, 5.0, 0.0, 9.0])  # the copy 4 has delta 0 (3 is "denser")
    new = _scores(lr, [9.0, 9.0, 9.0, 0.0, 5.0, 9.0])  # the tie went the other way
    res = compare_selection(ref, new, 4, feats)
    assert res["ok"], res
    assert res["counts"]["duplicate"] == 1 and res["swaps"] == [{"kind": "duplicate", "batch": 0, "ref": 3, "new": 4}]


def test_compare_selection_rejects_mismatched_shapes() -> None:
    ref = _scores(LR, [1.0] * 6)
    with pytest.raises(ValueError, match="features"):
        compare_selection(ref, ref, 3, FEATS[:, :5])


# ------------------------------------------------------------------------------------------------
# CudaGraphRunner: cache key and batch buckets, with a capture faked on the CPU
# ------------------------------------------------------------------------------------------------

class FakeGraphRunner(CudaGraphRunner):
    """Captures on the CPU: a 'graph' freezes what a real one would (the pruning settings, the
    train / eval mode, the DPC backend) and replays the model with them on the static input."""

    graph_devices = ("cpu",)

    def _state(self):
        return ([(m.eps, m.k, m.tau) for m in self._prunes], self.model.training, os.environ.get(BACKEND_ENV))

    def _set_state(self, state) -> None:
        prunes, training, backend = state
        for m, (eps, k, tau) in zip(self._prunes, prunes):
            m.eps, m.k, m.tau = eps, k, tau
        self.model.train(training)
        if backend is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = backend

    def _capture(self, static_in, kwargs):
        with torch.no_grad():
            out = self.model(static_in, **kwargs)
        return out, (static_in, kwargs, out, self._state())

    def _replay(self, graph) -> None:
        static_in, kwargs, out, frozen = graph
        now = self._state()
        self._set_state(frozen)
        try:
            with torch.no_grad():
                fresh = self.model(static_in, **kwargs)
            for old, new in zip(tree_leaves(out), tree_leaves(fresh)):
                if isinstance(old, torch.Tensor):
                    old.copy_(new)
        finally:
            self._set_state(now)


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_model("ftp_pose", backbone="quick", img_size=(64, 48)).eval()


def _clips(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 3, 64, 48, generator=torch.Generator().manual_seed(seed))


def test_batch_bucket_hand_values() -> None:
    assert [batch_bucket(n) for n in (1, 2, 3, 4, 5, 8, 9, 33)] == [1, 2, 4, 4, 8, 8, 16, 64]
    assert [batch_bucket(n, (2, 6)) for n in (1, 2, 3, 6, 7)] == [2, 2, 6, 6, 7]
    with pytest.raises(ValueError):
        batch_bucket(0)


def test_runner_recaptures_after_set_pruning(small_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "reference")
    model = small_model
    model.set_pruning(eps_h=6, eps_l=6)
    runner = FakeGraphRunner(model)
    x = _clips(2)
    with torch.no_grad():
        e6 = model(x)
        assert torch.allclose(runner(x), e6, atol=1e-5) and runner.captures == 1
        assert torch.allclose(runner(x), e6, atol=1e-5) and runner.captures == 1  # replayed
        model.set_pruning(eps_h=2, eps_l=3)
        e2 = model(x)
        assert (e2 - e6).abs().max() > 1e-3  # the new ratio changes the output
        assert torch.allclose(runner(x), e2, atol=1e-5) and runner.captures == 2  # not the eps 6 graph
        model.set_pruning(k=3)
        assert torch.allclose(runner(x), model(x), atol=1e-5) and runner.captures == 3
        model.set_pruning(eps_h=6, eps_l=6, k=5)
        assert torch.allclose(runner(x), e6, atol=1e-5) and runner.captures == 3  # the first graph again
        monkeypatch.setenv(BACKEND_ENV, "auto")  # another DPC backend: another graph
        runner(x)
        assert runner.captures == 4
        model.train()
        runner(x)
        assert runner.captures == 5  # train mode: another graph
        model.eval()


def test_runner_pads_to_bucket_and_slices(small_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "reference")
    model = small_model.set_pruning(eps_h=6, eps_l=6, k=5)
    runner = FakeGraphRunner(model)
    x = _clips(4, seed=1)
    with torch.no_grad():
        out3 = runner(x[:3])  # bucket 4
        assert out3.shape[0] == 3 and runner.captures == 1
        assert torch.allclose(out3, model(x[:3]), atol=1e-5)  # padding rows do not leak into the batch
        out4 = runner(x)  # same bucket: replayed, not captured
        assert runner.captures == 1 and torch.allclose(out4, model(x), atol=1e-5)
        out1 = runner(x[1:2])
        assert runner.captures == 2 and torch.allclose(out1, model(x[1:2]), atol=1e-5)
        ret = runner(x[:3], return_info=True)  # tuple outputs: batch-first tensors sliced
        assert runner.captures == 3 and ret[0].shape[0] == 3


def test_runner_limits_graphs_and_runs_cpu_eagerly(small_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "reference")
    model = small_model.set_pruning(eps_h=6, eps_l=6, k=5)
    x = _clips(2, seed=2)
    with torch.no_grad():
        limited = FakeGraphRunner(model, max_graphs=1)
        limited(x)
        assert torch.allclose(limited(x[:1]), model(x[:1]), atol=1e-5) and limited.captures == 1  # eager beyond the limit
        real = CudaGraphRunner(model)  # CPU input: eager, nothing captured
        assert torch.equal(real(x), model(x)) and real.captures == 0


def test_runner_key_lists_every_pruning_module(small_model) -> None:
    runner = CudaGraphRunner(small_model)
    assert len(runner._prunes) == sum(isinstance(m, DPCPruning) for m in small_model.modules()) == 2
    small_model.set_pruning(eps_h=3, eps_l=10, k=4, tau=7.0)
    key = runner.key(_clips(3), {})
    assert key[0] == (4, 3, 3, 64, 48)
    assert sorted(key[-1]) == sorted([(3.0, 4, 7.0, False, None, "dpc", 0), (10.0, 4, 7.0, False, None, "dpc", 0)])
    small_model.set_pruning(eps_h=6, eps_l=6, k=5)


# ------------------------------------------------------------------------------------------------
# the dry run, end to end, as the GPU machine would import it
# ------------------------------------------------------------------------------------------------

BLOCKER = '''
import importlib.abc, sys
BLOCKED = {"pycocotools", "plotly", "ipywidgets", "cv2"}
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the gpu-check test)")
        return None
sys.meta_path.insert(0, _Block())
'''


def test_dry_run_end_to_end_without_optional_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    empty_bin = tmp_path / "bin"  # PATH without git
    empty_bin.mkdir()
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", BACKEND_ENV, "OUT")}
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(REPO_ROOT)]), PATH=str(empty_bin),
               FTP_POSE_COMMIT="abc1234", OMP_NUM_THREADS="1")
    probe = subprocess.run([sys.executable, "-c", "import cv2"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked" in probe.stderr  # the blocker works
    proc = subprocess.run([sys.executable, "-m", "ftp_pose", "gpu-check", "--dry-run", "--out", str(out),
                           "--budget", "900"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    res = json.loads((out / "gpu_check.json").read_text())
    assert res["dry_run"] and res["commit"] == "abc1234"  # no git: the commit from the environment
    assert [s["name"] for s in res["steps"]] == list(GpuCheck.STEPS)
    assert {s["name"]: s["status"] for s in res["steps"]} == {**{n: "ok" for n in GpuCheck.STEPS}, "compile": "skipped"}
    assert res["failed_steps"] == []
    # the comparison section: the kernel ran (interpreter) and matched the reference by the set rule
    for name in ("kernel_hrb", "kernel_lrb"):
        cmp = res["tests"][name]
        assert cmp["ok"] is True and set(cmp["counts"]) >= {"duplicate", "near_tie_density", "unexplained"}
        assert cmp["counts"]["unexplained"] == 0 and cmp["max_abs_log_rho_diff"] < 1e-4
    assert res["tests"]["kernel_hrb"]["tokens"] == 16 * DRY_RUN.hrb["grid"][0] * DRY_RUN.hrb["grid"][1]
    assert all(res["tests"][c]["ok"] for c in ("runner", "bf16"))
    assert all(v["comparison"]["ok"] for k, v in res["kernel"].items() if k.startswith(("hrb", "lrb")))
    assert (out / "profile.txt").read_text().strip()
    assert (out / "gpu_check.md").read_text().startswith("# GPU check (DRY RUN)")

    bench = json.loads((out / "figures" / "bench_cuda.json").read_text())
    # bench's own format (written through ftp_pose.bench.assemble_result), with the free-selection row
    assert {"device", "device_type", "quick", "batch", "throughput_batch", "dpc_backend", "rows", "speedup",
            "selection_cost", "pairs"} <= set(bench)
    assert bench["device_type"] == "cpu" and bench["quick"] is True and bench["cuda_graphs"] is True
    assert [r["name"] for r in bench["rows"]] == ["baseline", "multigrained", "ftp_pose", "ftp_pose_free_selection"]
    assert set(bench["selection_cost"]) == {"batch", "throughput"}
    for r in bench["rows"]:
        assert r["fps"] > 0 and r["fps_throughput"] > 0 and 0 <= r["dpc_frac"] <= 1
    assert {(p["a"], p["b"]) for p in bench["pairs"]} == {("multigrained", "baseline"), ("ftp_pose", "baseline"),
                                                          ("ftp_pose", "multigrained")}


def test_gpu_check_without_cuda_says_so(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from ftp_pose.experiments import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.run_gpu_check(dry_run=False) == 2
    assert "no CUDA device" in capsys.readouterr().err
