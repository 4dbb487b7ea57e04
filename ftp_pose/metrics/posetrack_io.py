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

from ftp_pose.io import read_json, write_json
from ftp_pose.keypoints import NUM_JOINTS

Source = str | os.PathLike | dict | list


def load_posetrack_json(path: str | os.PathLike) -> dict:
    """Load one PoseTrack json and check its top-level layout (errors name the file and field)."""
    doc = read_json(path)
    check_document(doc, str(path))
    return doc


def check_document(doc: Any, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the field when ``doc`` is not PoseTrack-shaped."""
    if not isinstance(doc, dict):
        raise ValueError(f"{name}: expected a json object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if key not in doc:
            raise ValueError(f"{name}: missing field '{key}'")
        if not isinstance(doc[key], list):
            raise ValueError(f"{name}: field '{key}' must be a list")
    for i, img in enumerate(doc["images"]):
        if "id" not in img:
            raise ValueError(f"{name}: images[{i}] has no field 'id'")
    for i, ann in enumerate(doc["annotations"]):
        if "image_id" not in ann:
            raise ValueError(f"{name}: annotations[{i}] has no field 'image_id'")
        kp = ann.get("keypoints")
        if kp is None or np.asarray(kp).size != NUM_JOINTS * 3:
            n = None if kp is None else np.asarray(kp).size
            raise ValueError(f"{name}: annotations[{i}].keypoints must hold {NUM_JOINTS} x 3 = "
                             f"{NUM_JOINTS * 3} numbers, got {n}")
        scores = ann.get("scores")
        if scores not in (None, []) and np.asarray(scores).size != NUM_JOINTS:
            raise ValueError(f"{name}: annotations[{i}].scores must hold {NUM_JOINTS} numbers, "
                             f"got {np.asarray(scores).size}")


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
            raise FileNotFoundError(f"no json files in {path}")
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

    ``predictions``: dicts with ``image_id``, ``keypoints`` (17 x 3: x, y, score), optional
    ``score`` (person score) and ``track_id``. Each file lists every frame of the ground-truth
    video (unlabeled ones included, as poseval requires) and is named like the ground truth.
    """
    docs = load_documents(gt_source)
    by_image: dict[Any, list[dict]] = defaultdict(list)
    for p in predictions:
        by_image[p["image_id"]].append(p)
    paths = []
    for key, doc in docs.items():
        anns = []
        for img in doc["images"]:
            for n, p in enumerate(by_image.get(img["id"], [])):
                kp = np.asarray(p["keypoints"], dtype=np.float64).reshape(NUM_JOINTS, 3)
                anns.append({
                    "image_id": img["id"],
                    "keypoints": [round(float(v), 3) for v in kp.reshape(-1)],
                    "scores": [round(float(v), 5) for v in kp[:, 2]],
                    "score": float(p.get("score", float(kp[:, 2].mean()))),
                    "track_id": int(p["track_id"]) if p.get("track_id") not in (None, -1) else n,
                    "category_id": 1,
                })
        images = [copy.deepcopy(img) for img in doc["images"]]
        out = {"images": images, "annotations": anns, "categories": doc.get("categories", [])}
        paths.append(write_json(Path(out_dir) / f"{key}.json", out, indent=None))
    return paths
