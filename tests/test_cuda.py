"""CUDA-only checks (issue 24): skipped without a GPU.

Each test calls a plain function of :mod:`ftp_pose.experiments.gpu_check`, which
``python -m ftp_pose gpu-check`` runs first on a GPU machine without pytest:

* the compiled Triton kernel vs the reference at N = 3072 (HRB, C = 768) and N = 576 (LRB),
  compared by :func:`~ftp_pose.experiments.gpu_check.compare_selection` (same kept tokens
  apart from named exact duplicates and near-ties; log rho on all tokens, delta on untied ones);
* :class:`~ftp_pose.models.runner.CudaGraphRunner` equal to eager before and after
  ``set_pruning``, on a padded batch and under bf16 autocast;
* a bf16 autocast forward close to the fp32 one.
"""
from __future__ import annotations

import pytest
import torch

from ftp_pose.experiments import gpu_check

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_kernel_matches_reference_hrb_n3072() -> None:
    res = gpu_check.check_kernel_hrb("cuda", batch=8, grid=(16, 12), factor=4, width=768)
    assert res["tokens"] == 3072
    assert res["ok"], res


def test_kernel_matches_reference_lrb_n576() -> None:
    res = gpu_check.check_kernel_lrb("cuda", batch=8, tokens=576, width=768)
    assert res["tokens"] == 576
    assert res["ok"], res


def test_cuda_graph_runner_matches_eager_before_and_after_set_pruning() -> None:
    res = gpu_check.check_runner("cuda")
    assert res["changed_by_set_pruning"]["ok"], res  # else "after" would prove nothing
    assert res["captures"]["captured"] == 4, res
    assert res["ok"], res


def test_bf16_autocast_close_to_fp32() -> None:
    res = gpu_check.check_bf16("cuda")
    assert res["ok"], res
