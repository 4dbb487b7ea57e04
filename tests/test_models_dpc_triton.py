"""The fused Triton DPC kernel, checked against the reference through Triton's CPU interpreter.

The checks live in ``tests/_dpc_triton_interp.py`` and run in ONE subprocess (``TRITON_INTERPRET=1``
must be set before triton is imported, which this test process cannot guarantee); sizes are
small because the interpreter is slow.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from ftp_pose.paths import REPO_ROOT

pytest.importorskip("triton")

CASES = ["plain_random", "plain_duplicates", "upsampled_bilinear", "upsampled_nearest", "module_dispatch", "tile_shapes"]


@pytest.fixture(scope="module")
def interp_results() -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "_dpc_triton_interp.py"), *CASES],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES)
def test_kernel_matches_reference_in_interpreter(interp_results: dict, case: str) -> None:
    assert interp_results[case]["ok"], interp_results[case]["detail"]


def test_cpu_tensors_never_pick_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    from ftp_pose.models import dpc

    monkeypatch.delenv(dpc.BACKEND_ENV, raising=False)
    assert dpc.backend_for(torch.zeros(1, 2, 3)) != "triton"
