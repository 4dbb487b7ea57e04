"""Small helpers shared by several test files (imported as ``from _helpers import ...``)."""
from __future__ import annotations

import socket

import numpy as np

from ftp_pose.keypoints import EVAL_JOINTS, NUM_JOINTS


def person_keypoints(x0: float) -> np.ndarray:
    """17 x 3 keypoints of a standing person whose joints are >= 30 px apart, starting at x = ``x0``; ears empty."""
    kp = np.zeros((NUM_JOINTS, 3))
    for n, j in enumerate(EVAL_JOINTS):
        kp[j] = (x0 + 40 * (n % 3), 30 + 35 * n, 1)
    return kp


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
