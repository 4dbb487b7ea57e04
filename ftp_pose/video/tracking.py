"""Greedy IoU tracking: stable ``track_id`` s for the person boxes of consecutive frames.

Each frame, the boxes are matched to the live tracks (their last box) by IoU, best pair first
(greedy; scipy's Hungarian solver is not a dependency). A pair with IoU >= ``iou_threshold``
continues the track; an unmatched box starts a new track with the next unused id; a track not
matched for more than ``max_age`` frames ends. Ids are never reused, so they are unique per frame.
"""
from __future__ import annotations

import numpy as np

from ftp_pose.video.detect import box_iou


class IoUTracker:
    """``update(boxes N x 4 [x, y, w, h]) -> N track ids`` for one frame after the other."""

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 5):
        self.iou_threshold, self.max_age = iou_threshold, max_age
        self.tracks: dict[int, tuple[np.ndarray, int]] = {}  # id -> (last box, frames since seen)
        self.next_id = 0

    def update(self, boxes: np.ndarray) -> list[int]:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        ids = [-1] * len(boxes)
        live = list(self.tracks)
        if live and len(boxes):
            iou = box_iou(np.stack([self.tracks[t][0] for t in live]), boxes)  # tracks x boxes
            for flat in np.argsort(-iou, axis=None, kind="stable"):
                ti, bi = divmod(int(flat), len(boxes))
                if iou[ti, bi] < self.iou_threshold:
                    break
                if ids[bi] == -1 and live[ti] not in ids:
                    ids[bi] = live[ti]
        for bi in range(len(boxes)):
            if ids[bi] == -1:
                ids[bi] = self.next_id
                self.next_id += 1
        matched = set(ids)
        for t in live:
            if t not in matched:
                box, age = self.tracks[t]
                if age + 1 > self.max_age:
                    del self.tracks[t]
                else:
                    self.tracks[t] = (box, age + 1)
        for bi, t in enumerate(ids):
            self.tracks[t] = (boxes[bi], 0)
        return ids
