"""Greedy IoU tracking, boxes carried between detections, and the demo's detect-every-N step."""
from __future__ import annotations

import numpy as np

from ftp_pose.video.tracking import IoUTracker


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


def test_tracker_carries_boxes_at_their_velocity_between_detections() -> None:
    """Two people walking at constant speed, detected every 4 frames: the carried boxes are where a
    hand-computed straight-line walk puts them, and a jump too far for the IoU of the last box keeps
    its id because matching uses the box moved at the track's velocity."""
    every = 4
    start = np.array([[0, 0, 40, 80], [200, 10, 40, 80]], np.float64)
    speed = np.array([[4, 0, 0, 0], [-2, 1, 0, 0]], np.float64)  # pixels per frame
    tr = IoUTracker(iou_threshold=0.3)
    assert tr.update(start, frames=every) == [0, 1]
    assert tr.update(start + every * speed, frames=every) == [0, 1]
    for k in range(1, every):
        boxes, ids = tr.carry(k)
        assert ids == [0, 1]
        assert np.allclose(boxes, start + (every + k) * speed)
    # 8 frames later person 0 moved 32 px: IoU with its last box 8 / 72 < 0.3, with the moved box 1
    t = every + 8
    assert tr.update(start + t * speed, frames=8) == [0, 1]
    # a track missed by the last detection is not carried
    tr.update(start[1:] + (t + every) * speed[1:], frames=every)
    boxes, ids = tr.carry(1)
    assert ids == [1] and np.allclose(boxes, start[1] + (t + every + 1) * speed[1])


def test_people_step_detects_every_n_frames_and_carries_in_between() -> None:
    from ftp_pose.video.demo import PeopleStep

    calls = []
    frame = np.zeros((100, 200, 3), np.uint8)

    def detector(img):
        calls.append(len(calls))
        x = 10.0 + 12 * (len(calls) - 1)  # detections at frames 0, 3, 6: 4 px a frame
        return np.array([[x, 20, 30, 60], [150, 20, 30, 60]], np.float32), np.array([0.9, 0.8], np.float32)

    step = PeopleStep(detector, every=3)
    xs, ids = [], []
    for t in range(8):
        people = step(t, frame)
        xs.append([p.box[0] for p in people])
        ids.append([p.track_id for p in people])
        assert [p.score for p in people] == [np.float32(0.9), np.float32(0.8)]
    assert len(calls) == 3  # frames 0, 3, 6
    assert ids == [[0, 1]] * 8
    # the moving person: detected at 10, 22, 34; carried at 4 px a frame once its velocity is known
    assert np.allclose([x[0] for x in xs], [10, 10, 10, 22, 26, 30, 34, 38])
    assert np.allclose([x[1] for x in xs], [150] * 8)
    # a box is clipped to the frame, and dropped once carried out of it
    xs = iter([150.0, 190.0])  # detections at frames 0 and 2: 20 px a frame, 100-wide boxes (IoU 0.43)
    step = PeopleStep(lambda img: (np.array([[next(xs), 20, 100, 60]]), np.array([1.0])), every=2)
    widths = [[float(p.box[2]) for p in step(t, frame)] for t in range(4)]
    assert widths == [[50.0], [50.0], [10.0], []]
