"""Per-joint AP with the PoseTrack protocol of the official ``poseval`` tool (evaluateAP.py).

For each labeled frame (``is_labeled``):

1. head size of a ground-truth person = 0.6 x the diagonal of its head box ``bbox_head``;
2. a predicted joint matches a ground-truth joint when ``distance / head size <= 0.5`` (PCKh@0.5);
3. ``pck[p, g]`` = matched joints / annotated joints of person g; each prediction keeps only its
   best person, then each person takes its best prediction (``argmax``; a person whose best value
   is 0 stays unmatched). An assigned prediction's joints are true positives where they match;
   every other predicted joint is a false positive;
4. per joint, all predicted joints of all frames are ranked by their score (a missing per-joint
   score counts as -9999); recall = TP / number of annotated ground-truth joints,
   precision = TP / rank; AP = VOC area under the precision envelope (poseval's ``VOCap``).

Mean ("Total" in poseval) is the mean over the 15 evaluated joints, not over the 7 groups; Head is
the mean of head top, neck (head bottom) and nose. Points inside a frame's ``ignore_regions`` are
dropped from predictions and ground truth, and people left without points are removed, as in
poseval. Ties in score are ranked in file order (a stable sort; poseval's quicksort leaves them
unspecified). Frames are matched by image id, which poseval requires to be kept unchanged.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ftp_pose.keypoints import AP_GROUPS, EVAL_JOINTS, JOINT_NAMES, NUM_JOINTS
from ftp_pose.metrics.posetrack_io import Source, load_documents

PCKH_THRESHOLD = 0.5
HEAD_SIZE_FACTOR = 0.6
MISSING_SCORE = -9999.0


@dataclass
class APResult:
    """Result of :func:`evaluate_ap`; all AP values in percent."""

    per_joint: dict[str, float]
    table: dict[str, float]
    num_gt_joints: dict[str, int]
    num_pred_joints: dict[str, int]
    num_frames: int
    num_gt_people: int
    num_pred_people: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Table I columns as top-level keys, plus per-joint detail and counts."""
        out: dict[str, Any] = dict(self.table)
        out["per_joint"] = dict(self.per_joint)
        out["counts"] = {"frames": self.num_frames, "gt_people": self.num_gt_people,
                         "pred_people": self.num_pred_people, "gt_joints": self.num_gt_joints,
                         "pred_joints": self.num_pred_joints}
        return out

    def to_json(self) -> str:
        return json.dumps(_finite(self.to_dict()), indent=1)

    def to_markdown(self) -> str:
        """The paper's Table I layout: Head | Shoulder | ... | Mean."""
        cols = list(self.table)
        head = "| " + " | ".join(cols) + " |"
        sep = "|" + "|".join("---:" for _ in cols) + "|"
        row = "| " + " | ".join(_fmt(self.table[c]) for c in cols) + " |"
        return "\n".join([head, sep, row])


def _fmt(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.1f}"


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope (poseval's ``VOCap``), in [0, 1]."""
    mrec = np.concatenate([[0.0], np.asarray(recall, float), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, float), [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))


def head_size(bbox_head: Any) -> float:
    """0.6 x the diagonal of the head box ``[x, y, w, h]``."""
    x, y, w, h = (float(v) for v in bbox_head)
    return HEAD_SIZE_FACTOR * math.hypot(w, h)


def match_frame(gt_people: list[np.ndarray], pred_people: list[np.ndarray],
                head_sizes: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Match one frame's predictions to its ground truth as poseval does.

    gt_people: each ``17 x 3`` (x, y, annotated flag); pred_people: each ``17 x 3`` (x, y, present
    flag); head_sizes: one per ground-truth person.
    Returns ``(assigned, match)``: ``assigned[p]`` is the ground-truth index of prediction p or -1,
    ``match`` is ``P x G x 17`` bool (joint within 0.5 head size).
    """
    P, G = len(pred_people), len(gt_people)
    match = np.zeros((P, G, NUM_JOINTS), dtype=bool)
    pck = np.zeros((P, G))
    for g, (gt, hs) in enumerate(zip(gt_people, head_sizes)):
        has_gt = gt[:, 2] > 0
        n_gt = int(has_gt.sum())
        for p, pr in enumerate(pred_people):
            both = has_gt & (pr[:, 2] > 0)
            dist = np.linalg.norm(gt[:, :2] - pr[:, :2], axis=1) / max(hs, 1e-12)
            match[p, g] = both & (dist <= PCKH_THRESHOLD)
            pck[p, g] = match[p, g].sum() / n_gt if n_gt else 0.0
    assigned = -np.ones(P, dtype=int)
    if P and G:
        best = np.argmax(pck, axis=1)  # each prediction keeps its best person only
        keep = np.zeros_like(pck)
        keep[np.arange(P), best] = pck[np.arange(P), best]
        pr_of_gt = np.argmax(keep, axis=0)  # each person takes its best prediction
        val = np.max(keep, axis=0)
        for g in range(G):
            if val[g] > 0:
                assigned[pr_of_gt[g]] = g
    return assigned, match


def _inside_regions(points: np.ndarray, image: dict) -> np.ndarray:
    """Which of ``N x 2`` points lie inside the image's ignore polygons."""
    xs, ys = image.get("ignore_regions_x") or [], image.get("ignore_regions_y") or []
    inside = np.zeros(len(points), dtype=bool)
    if not xs:
        return inside
    from matplotlib.path import Path as MplPath

    for rx, ry in zip(xs, ys):
        if len(rx) >= 3:
            inside |= MplPath(np.stack([rx, ry], axis=1)).contains_points(points)
    return inside


def _gt_person(ann: dict, name: str) -> tuple[np.ndarray, float] | None:
    kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(NUM_JOINTS, 3)
    kp[:, 2] = (kp[:, 2] > 0).astype(float)
    if kp[:, 2].sum() == 0:
        return None
    if not ann.get("bbox_head"):
        raise ValueError(f"{name}: ground-truth annotation {ann.get('id')} of image {ann['image_id']} "
                         "has keypoints but no 'bbox_head' (needed for the PCKh head size)")
    return kp, head_size(ann["bbox_head"])


def _pred_person(ann: dict) -> tuple[np.ndarray, np.ndarray]:
    kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(NUM_JOINTS, 3)
    present = ~np.all(kp == 0, axis=1)
    scores = ann.get("scores")
    s = np.asarray(scores, dtype=np.float64) if scores not in (None, []) else np.full(NUM_JOINTS, MISSING_SCORE)
    pts = np.concatenate([kp[:, :2], present[:, None].astype(float)], axis=1)
    return pts, s


def evaluate_ap(gt: Source, pred: Source) -> APResult:
    """Per-joint AP (percent) of predictions ``pred`` against ground truth ``gt``.

    Each may be a folder of per-video jsons, one json file, a loaded dict, or a list of these.
    When both are folders, every ground-truth file needs a prediction file of the same name.
    """
    gt_docs = load_documents(gt)
    pred_docs = load_documents(pred)
    if _is_dir(gt) and _is_dir(pred):
        for key in gt_docs:
            if key not in pred_docs:
                raise FileNotFoundError(f"no prediction file {key}.json in {pred} for ground truth {key}.json")
    preds_by_image: dict[Any, list[dict]] = {}
    pred_images: set = set()
    for doc in pred_docs.values():
        pred_images.update(img["id"] for img in doc["images"])
        for ann in doc["annotations"]:
            preds_by_image.setdefault(ann["image_id"], []).append(ann)

    scores: list[list[float]] = [[] for _ in range(NUM_JOINTS)]
    labels: list[list[bool]] = [[] for _ in range(NUM_JOINTS)]
    n_gt = np.zeros(NUM_JOINTS, dtype=int)
    n_frames = n_gt_people = n_pred_people = 0
    for key, doc in gt_docs.items():
        anns_by_image: dict[Any, list[dict]] = {}
        for ann in doc["annotations"]:
            anns_by_image.setdefault(ann["image_id"], []).append(ann)
        for img in doc["images"]:
            if not img.get("is_labeled", True):
                continue
            if pred_images and img["id"] not in pred_images and img["id"] not in preds_by_image:
                raise ValueError(f"predictions for video {key}: labeled image id {img['id']} "
                                 f"({img.get('file_name')}) is not listed in the prediction file")
            n_frames += 1
            gts, heads = [], []
            for ann in anns_by_image.get(img["id"], []):
                person = _gt_person(ann, f"ground truth {key}")
                if person is None:
                    continue
                kp, hs = person
                kp[_inside_regions(kp[:, :2], img), 2] = 0
                if kp[:, 2].sum() > 0:
                    gts.append(kp)
                    heads.append(hs)
            prs, prs_scores = [], []
            for ann in preds_by_image.get(img["id"], []):
                pts, s = _pred_person(ann)
                pts[_inside_regions(pts[:, :2], img), 2] = 0
                if pts[:, 2].sum() > 0:
                    prs.append(pts)
                    prs_scores.append(s)
            n_gt_people += len(gts)
            n_pred_people += len(prs)
            for kp in gts:
                n_gt += (kp[:, 2] > 0).astype(int)
            assigned, match = match_frame(gts, prs, heads)
            for p, (pts, s) in enumerate(zip(prs, prs_scores)):
                g = assigned[p]
                for j in range(NUM_JOINTS):
                    if pts[j, 2] > 0:
                        scores[j].append(float(s[j]))
                        labels[j].append(bool(match[p, g, j]) if g >= 0 else False)

    per_joint: dict[str, float] = {}
    for j in range(NUM_JOINTS):
        per_joint[JOINT_NAMES[j]] = _joint_ap(np.asarray(scores[j]), np.asarray(labels[j]), int(n_gt[j]))
    table = {group: float(np.mean([per_joint[JOINT_NAMES[j]] for j in joints]))
             for group, joints in AP_GROUPS.items()}
    table["Mean"] = float(np.mean([per_joint[JOINT_NAMES[j]] for j in EVAL_JOINTS]))
    return APResult(
        per_joint={JOINT_NAMES[j]: per_joint[JOINT_NAMES[j]] for j in EVAL_JOINTS},
        table=table,
        num_gt_joints={JOINT_NAMES[j]: int(n_gt[j]) for j in EVAL_JOINTS},
        num_pred_joints={JOINT_NAMES[j]: len(scores[j]) for j in EVAL_JOINTS},
        num_frames=n_frames, num_gt_people=n_gt_people, num_pred_people=n_pred_people,
    )


def _joint_ap(scores: np.ndarray, labels: np.ndarray, total_pos: int) -> float:
    """AP in percent for one joint; 0 when no ground truth exists (poseval divides by zero there)."""
    if total_pos == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[order].astype(float))
    recall = tp / total_pos
    precision = tp / np.arange(1, len(order) + 1)
    return 100.0 * voc_ap(recall, precision)


def _is_dir(source: Any) -> bool:
    from pathlib import Path

    return isinstance(source, (str, Path)) and Path(source).is_dir()
