"""Greedy IoU tracking and the NMS / IoU helpers of the person detectors."""
from __future__ import annotations

import numpy as np

from ftp_pose.video.detect import box_iou, nms
from ftp_pose.video.tracking import IoUTracker


def test_box_iou_and_nms() -> None:
    a = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [100, 100, 5, 5]], np.float32)
    iou = box_iou(a, a)
    assert np.allclose(np.diag(iou), 1) and np.isclose(iou[0, 1], 50 / 150) and iou[0, 2] == 0
    keep, support = nms(a, np.array([0.5, 0.9, 0.1]), iou=0.3)
    assert keep.tolist() == [1, 2] and support.tolist() == [1, 0]


def test_tracker_keeps_ids_across_frames_and_reorderings() -> None:
    tr = IoUTracker(iou_threshold=0.3, max_age=1)
    p, q = np.array([0, 0, 20, 40.0]), np.array([100, 0, 20, 40.0])
    assert tr.update(np.stack([p, q])) == [0, 1]
    # moved a little and listed in the other order: same people, same ids
    assert tr.update(np.stack([q + [3, 0, 0, 0], p + [2, 1, 0, 0]])) == [1, 0]
    # a newcomer gets a fresh id; a missing person keeps its id for max_age frames
    r = np.array([300, 0, 20, 40.0])
    assert tr.update(np.stack([p + [4, 2, 0, 0], r])) == [0, 2]
    assert tr.update(np.stack([q + [5, 0, 0, 0]])) == [1]  # q was unseen for 1 frame (<= max_age)
    tr.update(np.zeros((0, 4)))
    tr.update(np.zeros((0, 4)))
    assert tr.update(np.stack([p])) == [3]  # every track ended: ids are never reused
    # one box matching two tracks goes to the better one; ids stay unique per frame
    tr2 = IoUTracker()
    tr2.update(np.stack([[0, 0, 10, 10], [4, 0, 10, 10]]))
    ids = tr2.update(np.stack([[4, 0, 10, 10], [0, 0, 10, 10]]))
    assert ids == [1, 0] and len(set(ids)) == 2
