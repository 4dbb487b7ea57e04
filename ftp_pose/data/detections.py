"""Person detections in the COCO results format (``[{image_id, bbox, score, category_id}, ...]``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ftp_pose.data.clips import parse_box
from ftp_pose.errors import DataLayoutError
from ftp_pose.io import read_json

Detection = tuple[np.ndarray, float]


def load_detections(path: str | Path, image_ids: set[int] | None = None,
                    score_thresh: float = 0.0) -> dict[int, list[Detection]]:
    """Read person boxes per image.

    Args:
        path: COCO results json: a list of ``{"image_id", "bbox": [x, y, w, h], "score",
            "category_id"}``; entries whose ``category_id`` is not 1 (person) are skipped.
        image_ids: keep only these images (None = all).
        score_thresh: keep boxes with ``score >= score_thresh``.
    Returns:
        ``{image_id: [(box float32 [4] xywh, score), ...]}`` sorted by decreasing score.
    Raises:
        ValueError naming the file, the entry index and the field for malformed entries
        (missing field, bbox not 4 numbers, non-positive width/height, non-numeric score).
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataLayoutError(f"{path}: detections must be a json list of {{image_id, bbox, score}} "
                         f"(COCO results format), got {type(data).__name__}")
    out: dict[int, list[Detection]] = {}
    for i, det in enumerate(data):
        where = f"{path}: detection #{i}"
        if not isinstance(det, dict):
            raise DataLayoutError(f"{where} is not an object")
        for field in ("image_id", "bbox", "score"):
            if field not in det:
                raise DataLayoutError(f"{where} has no field '{field}'")
        if det.get("category_id", 1) != 1:
            continue
        try:
            image_id = int(det["image_id"])
        except (TypeError, ValueError):
            raise DataLayoutError(f"{where}: field 'image_id' is not an integer: {det['image_id']!r}") from None
        try:
            score = float(det["score"])
        except (TypeError, ValueError):
            raise DataLayoutError(f"{where}: field 'score' is not a number: {det['score']!r}") from None
        box = parse_box(det["bbox"], where, "bbox")
        if image_ids is not None and image_id not in image_ids:
            continue
        if score < score_thresh:
            continue
        out.setdefault(image_id, []).append((box, score))
    for dets in out.values():
        dets.sort(key=lambda d: -d[1])
    return out


FrameBox = tuple[np.ndarray, float, "int | None"]


def load_frame_boxes(path: str | Path, n_frames: int, score_thresh: float = 0.3) -> dict[int, list[FrameBox]]:
    """Person boxes of a video: ``{frame index: [(box float32 [4] xywh, score, track_id or None), ...]}``.

    ``path`` is a json list in the COCO results format, ``[{"frame_index" or "image_id", "bbox",
    "score", optional "track_id"}, ...]``. ``frame_index`` is the 0-based position of the frame in
    the video. Without it, ``image_id`` is used: as the frame index when every id is below
    ``n_frames``, otherwise the sorted distinct ids are taken as the frames in order (PoseTrack ids
    such as 10000010000 work that way). Entries of another ``category_id`` than 1 and boxes under
    ``score_thresh`` are skipped; a malformed entry raises DataLayoutError naming the file and entry.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataLayoutError(f"{path}: boxes must be a json list of {{frame_index|image_id, bbox, score}}")
    for i, d in enumerate(data):
        if not isinstance(d, dict) or "bbox" not in d or not ("frame_index" in d or "image_id" in d):
            raise DataLayoutError(f"{path}: entry #{i} needs 'bbox' and 'frame_index' or 'image_id'")
    ids = [int(d["image_id"]) for d in data if "frame_index" not in d]
    as_index = all(0 <= i < n_frames for i in ids)
    order = {v: k for k, v in enumerate(sorted(set(ids)))}
    out: dict[int, list[FrameBox]] = {}
    for i, d in enumerate(data):
        if d.get("category_id", 1) != 1:
            continue
        score = float(d.get("score", 1.0))
        if score < score_thresh:
            continue
        f = int(d["frame_index"]) if "frame_index" in d else \
            (int(d["image_id"]) if as_index else order[int(d["image_id"])])
        box = parse_box(d["bbox"], f"{path}: entry #{i}", "bbox")
        out.setdefault(f, []).append((box, score, d.get("track_id")))
    return out
