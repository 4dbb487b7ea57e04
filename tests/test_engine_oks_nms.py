"""OKS-NMS of detector-box predictions uses PoseTrack18's OKS sigmas (mmpose's metadata)."""
from __future__ import annotations

import numpy as np

from ftp_pose.engine.inference import oks_nms
from ftp_pose.keypoints import FLIP_PAIRS, JOINT_NAMES, OKS_SIGMAS


def test_sigmas_are_posetrack18s() -> None:
    assert len(OKS_SIGMAS) == len(JOINT_NAMES)
    named = dict(zip(JOINT_NAMES, OKS_SIGMAS))
    # COCO's slot values: nose .026, the eye slots (PoseTrack's neck and head top) .025, ears .035
    assert (named["nose"], named["head_bottom"], named["head_top"]) == (0.026, 0.025, 0.025)
    assert named["left_ear"] == named["right_ear"] == 0.035
    assert named["left_hip"] == 0.107 and named["left_ankle"] == 0.089
    assert all(OKS_SIGMAS[a] == OKS_SIGMAS[b] for a, b in FLIP_PAIRS)


def _pose(dx: float = 0.0, head_dx: float = 0.0) -> list[list[float]]:
    kp = np.stack([np.linspace(100, 200, 17) + dx, np.linspace(50, 400, 17), np.ones(17)], 1)
    kp[:3, 0] += head_dx
    return kp.tolist()


def _pred(kp, score: float) -> dict:
    return {"image_id": 1, "keypoints": kp, "score": score, "box": [90, 40, 120, 370]}


def test_oks_nms_drops_a_near_duplicate_and_keeps_a_distinct_pose() -> None:
    best, dup, other = _pred(_pose(), 0.9), _pred(_pose(dx=1.0), 0.8), _pred(_pose(dx=60.0), 0.7)
    kept = oks_nms([dup, other, best], threshold=0.9)
    assert [p["score"] for p in kept] == [0.9, 0.7]


def test_head_joints_are_judged_with_the_small_head_sigmas() -> None:
    # the head joints moved 6 px: with the old (shoulder-sized) sigmas in slots 1-2 the two poses
    # have OKS 0.989 (a duplicate at 0.98); with .025 it is 0.974
    kept = oks_nms([_pred(_pose(), 0.9), _pred(_pose(head_dx=6.0), 0.8)], threshold=0.98)
    assert len(kept) == 2
