"""Per-video and per-subset AP of ground-truth-box predictions (what the ablation's statistics need).

The headline AP of a run is poseval's (``ftp_pose.metrics.evaluate_ap``), pooled over all videos. For
paired statistics over videos and for the perturbed subsets this module scores *labelled joints*:
with ground-truth boxes every labelled person has exactly one prediction (same ``image_id`` and
``track_id``), so each labelled, evaluated joint (:data:`ftp_pose.keypoints.EVAL_JOINTS`, ``v = 1``)
gives one record ``(score, correct)`` with correct = PCKh@0.5 (distance <= 0.5 x 0.6 x head-box
diagonal, as poseval). AP of a set of records, per joint: rank by score, recall = TP / records,
VOC area under the precision envelope (:func:`ftp_pose.metrics.posetrack_ap.voc_ap`); the mean is
over the joints with records. Unlike poseval, predicted joints where the ground truth has none are
not counted (no false positives from unlabelled joints), so these numbers sit a little above it.

Subsets (from the synthetic ``perturbation`` records, ``ftp_pose.data.synthetic``): ``occluded``
(the joint lay under a one-frame patch), ``blurred`` (its frame got the one-frame blur), ``clean``
(neither).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ftp_pose.keypoints import EVAL_JOINTS, NUM_JOINTS
from ftp_pose.metrics.posetrack_ap import PCKH_THRESHOLD, head_size, voc_ap

__all__ = ["joint_records", "records_ap", "per_video_ap", "subset_ap", "SUBSETS"]

SUBSETS = ("occluded", "blurred", "clean")


def joint_records(predictions: list[dict], gt: str | Path | dict) -> dict[str, np.ndarray]:
    """One record per labelled evaluated joint of ``gt`` (a merged split json) that has a prediction.

    ``predictions``: dicts with ``image_id``, ``track_id`` and ``keypoints`` (17 x 3: x, y, score), as
    :func:`ftp_pose.engine.inference.predict` returns them. Returns arrays (length R): ``joint``,
    ``video`` (index into the sorted video ids, stored under ``videos``), ``score``, ``correct``,
    ``occluded``, ``blurred``.
    """
    doc = json.loads(Path(gt).read_text()) if not isinstance(gt, dict) else gt
    vid_of = {img["id"]: str(img.get("vid_id", "")) for img in doc["images"]}
    videos = sorted(set(vid_of.values()))
    vindex = {v: i for i, v in enumerate(videos)}
    by_key = {(int(p["image_id"]), int(p["track_id"])): p for p in predictions}
    rows: list[tuple] = []
    for a in doc["annotations"]:
        p = by_key.get((int(a["image_id"]), int(a["track_id"])))
        if p is None:
            continue
        kp = np.asarray(a["keypoints"], float).reshape(NUM_JOINTS, 3)
        pk = np.asarray(p["keypoints"], float).reshape(NUM_JOINTS, 3)
        hs = head_size(a["bbox_head"])
        rec = a.get("perturbation", {})
        occ, blur = set(rec.get("occluded", [])), bool(rec.get("blurred", False))
        for j in EVAL_JOINTS:
            if kp[j, 2] <= 0:
                continue
            ok = bool(np.hypot(*(pk[j, :2] - kp[j, :2])) / hs <= PCKH_THRESHOLD)
            rows.append((j, vindex[vid_of[a["image_id"]]], float(pk[j, 2]), ok, j in occ, blur))
    cols = list(zip(*rows)) if rows else [[]] * 6
    return {"joint": np.asarray(cols[0], int), "video": np.asarray(cols[1], int),
            "score": np.asarray(cols[2], float), "correct": np.asarray(cols[3], bool),
            "occluded": np.asarray(cols[4], bool), "blurred": np.asarray(cols[5], bool),
            "videos": np.asarray(videos)}


def records_ap(rec: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, Any]:
    """Mean AP (percent) over the evaluated joints of the records selected by ``mask`` (all by default).

    Returns ``{"mean": float | None, "n": number of records}``; None when nothing is selected.
    """
    sel = np.ones(len(rec["score"]), bool) if mask is None else np.asarray(mask, bool)
    aps = []
    for j in EVAL_JOINTS:
        m = sel & (rec["joint"] == j)
        n = int(m.sum())
        if n == 0:
            continue
        order = rec["score"][m].argsort(kind="stable")[::-1]
        tp = np.cumsum(rec["correct"][m][order].astype(float))
        aps.append(100.0 * voc_ap(tp / n, tp / np.arange(1, n + 1)))
    return {"mean": float(np.mean(aps)) if aps else None, "n": int(sel.sum())}


def per_video_ap(rec: dict[str, np.ndarray]) -> dict[str, float | None]:
    """``{video id: mean AP of its records}``."""
    return {str(v): records_ap(rec, rec["video"] == i)["mean"] for i, v in enumerate(rec["videos"])}


def subset_ap(rec: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """``{"all" | "occluded" | "blurred" | "clean": {"mean", "n"}}``."""
    masks = {"all": None, "occluded": rec["occluded"], "blurred": rec["blurred"],
             "clean": ~(rec["occluded"] | rec["blurred"])}
    return {k: records_ap(rec, m) for k, m in masks.items()}
