"""Small helpers shared by several test files (imported as ``from _helpers import ...``)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ftp_pose.keypoints import EVAL_JOINTS, NUM_JOINTS


def person_keypoints(x0: float) -> np.ndarray:
    """17 x 3 keypoints of a standing person whose joints are >= 30 px apart, starting at x = ``x0``; ears empty."""
    kp = np.zeros((NUM_JOINTS, 3))
    for n, j in enumerate(EVAL_JOINTS):
        kp[j] = (x0 + 40 * (n % 3), 30 + 35 * n, 1)
    return kp


def spawn_and_join(fn, args: tuple, nprocs: int, deadline_s: float, what: str) -> None:
    """``torch.multiprocessing.spawn(fn, args, nprocs)`` that cannot hang the test session.

    A rank that raises fails the test with its traceback (as ``spawn`` does); ranks still running
    after ``deadline_s`` seconds are killed and the test fails naming ``what`` and the deadline.
    """
    import torch.multiprocessing as mp

    ctx = mp.spawn(fn, args=args, nprocs=nprocs, join=False)
    end = time.monotonic() + deadline_s
    while not ctx.join(timeout=1.0):
        if time.monotonic() > end:
            alive = [i for i, p in enumerate(ctx.processes) if p.is_alive()]
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            for p in ctx.processes:
                p.join(10)
            pytest.fail(f"{what}: rank(s) {alive} of {nprocs} still running after {deadline_s:.0f} s, killed "
                        "(a deadlocked collective, or a machine far slower than this test allows)", pytrace=False)
