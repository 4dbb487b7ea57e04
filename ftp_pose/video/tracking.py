"""Greedy IoU tracking: stable ``track_id`` s for the person boxes of a video.

Each detection, the boxes are matched to the live tracks by IoU (``torchvision.ops.box_iou``) with
each track's box moved ahead at its velocity, best pair first (greedy; scipy's Hungarian solver is
not a dependency). A pair with IoU >= ``iou_threshold`` continues the track; an unmatched box
starts a new track with the next unused id; a track not matched for more than ``max_age``
detections ends. Ids are never reused, so they are unique per frame.

Between detections (the demo's ``--detect-every N``), :meth:`IoUTracker.carry` gives the boxes of
the tracks the last detection found, moved at their velocity (pixels per frame, from their last
two detections).
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou


def _xyxy(boxes: np.ndarray) -> torch.Tensor:
    """``N x 4 [x, y, w, h]`` -> ``N x 4 [x1, y1, x2, y2]`` float64 tensor."""
    b = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)


class IoUTracker:
    """``update(boxes N x 4 [x, y, w, h], frames) -> N track ids`` for one detection after the other;
    ``carry(frames) -> (boxes, ids)`` between detections."""

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 5):
        self.iou_threshold, self.max_age = iou_threshold, max_age
        # id -> (last box 4, velocity 4 per frame, detections since seen)
        self.tracks: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
        self.next_id = 0

    def _ahead(self, frames: int) -> tuple[list[int], np.ndarray]:
        """Ids and boxes (``T x 4``) of the live tracks, each moved at its velocity to ``frames`` frames
        after the last detection (a track last seen ``age`` detections earlier: ``frames x (age + 1)``)."""
        live = list(self.tracks)
        boxes = [box + vel * frames * (age + 1) for box, vel, age in (self.tracks[t] for t in live)]
        return live, np.array(boxes, np.float64).reshape(-1, 4)

    def update(self, boxes: np.ndarray, frames: int = 1) -> list[int]:
        """Track ids of the detected ``boxes`` (``N x 4``), ``frames`` frames after the previous detection."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        ids = [-1] * len(boxes)
        live, ahead = self._ahead(frames)
        if live and len(boxes):
            iou = box_iou(_xyxy(ahead), _xyxy(boxes)).numpy()  # tracks x boxes
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
                box, vel, age = self.tracks[t]
                if age + 1 > self.max_age:
                    del self.tracks[t]
                else:
                    self.tracks[t] = (box, vel, age + 1)
        for bi, t in enumerate(ids):
            old = self.tracks.get(t)
            vel = (boxes[bi] - old[0]) / (frames * (old[2] + 1)) if old is not None else np.zeros(4)
            self.tracks[t] = (boxes[bi], vel, 0)
        return ids

    def carry(self, frames: int) -> tuple[np.ndarray, list[int]]:
        """Boxes (``N x 4``) and ids of the tracks the last detection found, ``frames`` frames after it."""
        live, ahead = self._ahead(frames)
        seen = [i for i, t in enumerate(live) if self.tracks[t][2] == 0]
        return ahead[seen].reshape(-1, 4), [live[i] for i in seen]
