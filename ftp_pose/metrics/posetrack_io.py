"""Reading and writing PoseTrack-2018-layout json files (ground truth and predictions).

The layout is the one the official ``poseval`` tool reads for PoseTrack 2018/2021: one json per
video with ``images`` (``id``, ``file_name``, ``is_labeled``, ``vid_id``, ``frame_id``, optional
``ignore_regions_x/y``) and ``annotations`` (``image_id``, ``keypoints`` as 51 numbers
``x, y, v/score`` in :data:`ftp_pose.keypoints.JOINT_NAMES` order, per-joint ``scores``,
``track_id``, and ``bbox_head`` for ground truth).
"""
from __future__ import annotations

import copy
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ftp_pose.errors import DataLayoutError, MissingFileError
from ftp_pose.io import read_json, write_json
from ftp_pose.keypoints import JOINT_NAMES, NUM_JOINTS, SKELETON

Source = str | os.PathLike | dict | list

#: The PoseTrack18 ``categories`` entry (poseval's reader needs it in every file).
PERSON_CATEGORY: dict = {"supercategory": "person", "id": 1, "name": "person", "keypoints": list(JOINT_NAMES),
                         "skeleton": [[a + 1, b + 1] for a, b in SKELETON]}


def load_posetrack_json(path: str | os.PathLike) -> dict:
    """Load one PoseTrack json and check its top-level layout (errors name the file and field)."""
    doc = read_json(path)
    check_document(doc, str(path))
    return doc


def check_document(doc: Any, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the field when ``doc`` is not PoseTrack-shaped."""
    if not isinstance(doc, dict):
        raise DataLayoutError(f"{name}: expected a json object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if key not in doc:
            raise DataLayoutError(f"{name}: missing field '{key}'")
        if not isinstance(doc[key], list):
            raise DataLayoutError(f"{name}: field '{key}' must be a list")
    for i, img in enumerate(doc["images"]):
        if "id" not in img:
            raise DataLayoutError(f"{name}: images[{i}] has no field 'id'")
    for i, ann in enumerate(doc["annotations"]):
        if "image_id" not in ann:
            raise DataLayoutError(f"{name}: annotations[{i}] has no field 'image_id'")
        _check_numbers(ann.get("keypoints"), NUM_JOINTS * 3, f"{name}: annotations[{i}].keypoints")
        if ann.get("scores") not in (None, []):
            _check_numbers(ann["scores"], NUM_JOINTS, f"{name}: annotations[{i}].scores")


def _check_numbers(values: Any, n: int, where: str) -> None:
    """``values`` must convert to ``n`` numbers; ``where`` names the file and field."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataLayoutError(f"{where} must hold {n} numbers, got {str(values)[:60]}") from None
    if values is None or arr.size != n:
        raise DataLayoutError(f"{where} must hold {n} numbers, got {None if values is None else arr.size}")


def load_documents(source: Source) -> dict[str, dict]:
    """Return ``{video_key: document}`` from a folder of per-video jsons, one json, dicts or a list.

    A folder's files are keyed by file stem (as poseval matches them); a merged file is split
    per video, keyed by the folder name of the video's frames (PoseTrack's per-video file names).
    """
    if isinstance(source, dict):
        check_document(source, "<dict>")
        return split_by_video(source)
    if isinstance(source, list):
        out: dict[str, dict] = {}
        for item in source:
            out.update(load_documents(item))
        return out
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise MissingFileError(f"no json files in {path}")
        return {f.stem: load_posetrack_json(f) for f in files}
    return split_by_video(load_posetrack_json(path))


def video_key(image: dict) -> str:
    """Key of the video an image belongs to: the folder of its frames, else its ``vid_id``."""
    fn = image.get("file_name")
    if fn:
        parent = Path(fn).parent.name
        if parent:
            return parent
    return str(image.get("vid_id", "video"))


def split_by_video(doc: dict) -> dict[str, dict]:
    """Split a merged document into per-video documents (``categories`` copied to each)."""
    keys = {img["id"]: video_key(img) for img in doc["images"]}
    out: dict[str, dict] = {}
    for img in doc["images"]:
        d = out.setdefault(keys[img["id"]], {"images": [], "annotations": [],
                                             "categories": doc.get("categories", [])})
        d["images"].append(img)
    for ann in doc["annotations"]:
        key = keys.get(ann["image_id"])
        if key is not None:
            out[key]["annotations"].append(ann)
    return out


def write_posetrack_predictions(out_dir: str | os.PathLike, gt_source: Source,
                                predictions: Iterable[dict]) -> list[Path]:
    """Write one prediction json per ground-truth video into ``out_dir`` (atomically).

    ``predictions``: dicts with ``image_id`` (an id of the ground truth's images), ``keypoints``
    (``17 x 3``: x, y, score), optional ``score`` (person score, default the mean joint score) and
    ``track_id`` (None or -1: the smallest id unused in its frame) and optional ``bbox`` (the person
    box ``[x, y, w, h]``, copied to the output; poseval ignores it). Each file is named like the
    ground-truth file, copies its ``images`` (every frame, unlabeled ones included, as poseval
    requires) and holds ``annotations`` with ``image_id``, ``keypoints`` (51 numbers), ``scores``
    (17 per-joint scores, used by poseval to rank joints), ``score``, ``track_id`` (unique per
    frame), ``category_id`` 1 and ``bbox`` when given. Returns the written paths.
    """
    docs = load_documents(gt_source)
    by_image: dict[Any, list[dict]] = defaultdict(list)
    for i, p in enumerate(predictions):
        if "image_id" not in p or "keypoints" not in p:
            raise DataLayoutError(f"predictions[{i}] needs 'image_id' and 'keypoints' (17 x 3)")
        by_image[p["image_id"]].append(p)
    known = {img["id"] for doc in docs.values() for img in doc["images"]}
    unknown = [i for i in by_image if i not in known]
    if unknown:
        raise DataLayoutError(f"{len(unknown)} prediction image_id(s) are not in the ground truth {gt_source}, "
                         f"e.g. {unknown[:3]} (predictions must keep the ground truth's image ids)")
    paths = []
    for key, doc in docs.items():
        anns = []
        for img in doc["images"]:
            people = by_image.get(img["id"], [])
            given = [p.get("track_id") for p in people if p.get("track_id") not in (None, -1)]
            if len(given) != len(set(given)):
                raise DataLayoutError(f"predictions for image {img['id']} ({img.get('file_name')}) share a "
                                 "'track_id'; poseval requires them unique per frame")
            free = (t for t in range(len(people) + len(given) + 1) if t not in set(given))
            for p in people:
                kp = np.asarray(p["keypoints"], dtype=np.float64)
                if kp.size != NUM_JOINTS * 3:
                    raise DataLayoutError(f"prediction for image {img['id']}: keypoints must be {NUM_JOINTS} x 3, "
                                     f"got shape {kp.shape}")
                kp = kp.reshape(NUM_JOINTS, 3)
                tid = p.get("track_id")
                ann = {
                    "image_id": img["id"],
                    "keypoints": [float(v) for v in kp.reshape(-1)],
                    "scores": [float(v) for v in kp[:, 2]],
                    "score": float(p["score"]) if p.get("score") is not None else float(kp[:, 2].mean()),
                    "track_id": int(tid) if tid not in (None, -1) else next(free),
                    "category_id": 1,
                }
                if p.get("bbox") is not None:
                    ann["bbox"] = [float(v) for v in np.asarray(p["bbox"], np.float64).reshape(4)]
                anns.append(ann)
        images = [copy.deepcopy(img) for img in doc["images"]]
        out = {"images": images, "annotations": anns, "categories": doc.get("categories") or [PERSON_CATEGORY]}
        paths.append(write_json(Path(out_dir) / f"{key}.json", out, indent=None))
    return paths
