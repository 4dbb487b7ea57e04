"""Person detections in the COCO results format (``[{image_id, bbox, score, category_id}, ...]``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

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
        try:
            box = np.asarray(det["bbox"], dtype=np.float32)
        except (TypeError, ValueError):
            raise DataLayoutError(f"{where}: field 'bbox' is not numeric: {det['bbox']!r}") from None
        if box.shape != (4,) or not np.isfinite(box).all():
            raise DataLayoutError(f"{where}: field 'bbox' must be 4 finite numbers [x, y, w, h], got {det['bbox']!r}")
        if box[2] <= 0 or box[3] <= 0:
            raise DataLayoutError(f"{where}: field 'bbox' has zero or negative size (w={box[2]}, h={box[3]})")
        if image_ids is not None and image_id not in image_ids:
            continue
        if score < score_thresh:
            continue
        out.setdefault(image_id, []).append((box, score))
    for dets in out.values():
        dets.sort(key=lambda d: -d[1])
    return out
