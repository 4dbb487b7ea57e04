"""Per-joint AP with the PoseTrack protocol of the official ``poseval`` tool (evaluateAP.py).

This is a port of poseval's ``eval_helpers.load_data_dir`` / ``assignGTmulti`` /
``computeRPC`` / ``VOCap`` and of its PoseTrack18 reader (``convert.py``); it was checked
against poseval itself on randomised prediction sets (equal per-joint AP, precision and recall).

Reading (as poseval's converter does):

* ground truth and predictions are paired per video (file name), then frame by frame **by
  position** in ``images`` (poseval requires the same number of frames; a prediction file lists
  every frame of the ground-truth file, unlabeled ones included);
* a frame is scored when its ground truth has at least one annotation (poseval drops frames with
  none) and it is not marked ``is_labeled: false``;
* a joint (ground truth or prediction) is present unless its ``x, y, v`` are all 0;
* a predicted joint's score is ``scores[j]``; when ``scores`` is absent or empty every joint scores
  -9999 (poseval's ``MIN_SCORE``). The third keypoint value is never used as a score.

Scoring, per frame:

1. when the ground-truth frame has ``ignore_regions``, points strictly inside a region are
   dropped from ground truth and predictions, and people left without points are removed;
2. head size of a ground-truth person = 0.6 x the diagonal of its head box ``bbox_head``;
   a predicted joint matches when ``distance / head size <= 0.5`` (PCKh@0.5);
3. ``pck[p, g]`` = matched joints / annotated joints of person g; each prediction keeps only its
   best person (first on ties), then each person takes its best prediction (first on ties; a
   person whose best value is 0 stays unmatched). An assigned prediction's joints are true
   positives where they match; every other predicted joint is a false positive;

then per joint, all predicted joints of all frames are ranked by score exactly as poseval ranks
them: ``np.array(scores).argsort()[::-1]`` on the float64 scores in file order (frames, then
people). That is numpy's default, *unstable* sort, reversed: equal scores end up in an order
that depends on the whole array (for up to 16 scores it is reverse file order); both programs
make the same call on the same array, so they agree on the same numpy; recall = TP / number of
annotated ground-truth joints, precision = TP / rank; AP = VOC area under the precision
envelope (``VOCap``). A joint with predictions but no ground truth has AP NaN; one with neither
has AP 0 (as in poseval). Mean ("Total" in poseval) is the mean over the 15 evaluated joints that
are not NaN, not over the 7 groups; Head is the mean of head top, neck (head bottom) and nose.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ftp_pose.errors import DataLayoutError, MissingFileError
from ftp_pose.keypoints import AP_GROUPS, EVAL_JOINTS, JOINT_NAMES, NUM_JOINTS
from ftp_pose.metrics.posetrack_io import Source, load_documents

PCKH_THRESHOLD = 0.5
HEAD_SIZE_FACTOR = 0.6
MISSING_SCORE = -9999.0
TABLE_COLUMNS: tuple[str, ...] = (*AP_GROUPS, "Mean")


@dataclass
class APResult:
    """Result of :func:`evaluate_ap`; AP, precision and recall in percent.

    ``per_joint`` / ``precision`` / ``recall`` are keyed by the 15 evaluated joint names
    (:data:`ftp_pose.keypoints.JOINT_NAMES`); precision and recall are those at the end of the
    ranking (all predictions kept), as poseval reports them. ``table`` holds the Table I columns
    ``Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle, Mean``.
    """

    per_joint: dict[str, float]
    table: dict[str, float]
    num_gt_joints: dict[str, int]
    num_pred_joints: dict[str, int]
    num_frames: int
    num_gt_people: int
    num_pred_people: int
    precision: dict[str, float] = field(default_factory=dict)
    recall: dict[str, float] = field(default_factory=dict)
    num_true_positives: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Table I columns as top-level keys, plus per-joint detail and counts (NaN -> None)."""
        out: dict[str, Any] = dict(self.table)
        out["per_joint"] = dict(self.per_joint)
        out["precision"] = dict(self.precision)
        out["recall"] = dict(self.recall)
        out["counts"] = {"frames": self.num_frames, "gt_people": self.num_gt_people,
                         "pred_people": self.num_pred_people, "gt_joints": self.num_gt_joints,
                         "pred_joints": self.num_pred_joints, "true_positives": self.num_true_positives}
        return _finite(out)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def to_markdown(self) -> str:
        """The paper's Table I layout: ``| Head | Shoulder | ... | Mean |`` and one row of AP."""
        cols = list(self.table)
        head = "| " + " | ".join(cols) + " |"
        sep = "|" + "|".join("---:" for _ in cols) + "|"
        row = "| " + " | ".join(_fmt(self.table[c]) for c in cols) + " |"
        return "\n".join([head, sep, row])


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.1f}"


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope (poseval's ``VOCap``), in [0, 1].

    recall, precision: ``N`` values along the ranking (recall non-decreasing).
    """
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
    """Match one frame's predictions to its ground truth as poseval's ``assignGTmulti`` does.

    gt_people: each ``17 x 3`` (x, y, present flag); pred_people: each ``17 x 3`` (x, y, present
    flag); head_sizes: one per ground-truth person.
    Returns ``(assigned, match)``: ``assigned[p]`` is the ground-truth index of prediction p or -1,
    ``match`` is ``P x G x 17`` bool (both present and distance <= 0.5 head size).
    """
    P, G = len(pred_people), len(gt_people)
    match = np.zeros((P, G, NUM_JOINTS), dtype=bool)
    assigned = -np.ones(P, dtype=int)
    if P == 0 or G == 0:
        return assigned, match
    gt = np.stack([np.asarray(g, float) for g in gt_people])  # G x 17 x 3
    pr = np.stack([np.asarray(p, float) for p in pred_people])  # P x 17 x 3
    has_gt, has_pr = gt[..., 2] > 0, pr[..., 2] > 0
    hs = np.asarray(head_sizes, float)[None, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.linalg.norm(pr[:, None, :, :2] - gt[None, :, :, :2], axis=-1) / hs  # P x G x 17
    match = has_pr[:, None, :] & has_gt[None, :, :] & (dist <= PCKH_THRESHOLD)
    n_gt = has_gt.sum(axis=1)  # G
    pck = match.sum(axis=2).astype(float)
    pck = np.where(n_gt[None, :] > 0, pck / np.maximum(n_gt, 1)[None, :], pck)
    best = np.argmax(pck, axis=1)  # each prediction keeps its best person only
    keep = np.zeros_like(pck)
    keep[np.arange(P), best] = pck[np.arange(P), best]
    pr_of_gt = np.argmax(keep, axis=0)  # each person takes its best prediction
    val = np.max(keep, axis=0)
    for g in range(G):
        if val[g] > 0:
            assigned[pr_of_gt[g]] = g
    return assigned, match


def points_in_regions(points: np.ndarray, regions_x: list, regions_y: list) -> np.ndarray:
    """Which of ``N x 2`` points lie strictly inside any ignore polygon (even-odd rule).

    regions_x / regions_y: one list of vertex coordinates per polygon (the PoseTrack18
    ``ignore_regions_x`` / ``ignore_regions_y`` of an image). Polygons with < 3 vertices are skipped.
    """
    pts = np.asarray(points, float).reshape(-1, 2)
    inside = np.zeros(len(pts), dtype=bool)
    for rx, ry in zip(regions_x or [], regions_y or []):
        if len(rx) < 3:
            continue
        vx, vy = np.asarray(rx, float), np.asarray(ry, float)
        wx, wy = np.roll(vx, -1), np.roll(vy, -1)
        px, py = pts[:, :1], pts[:, 1:]
        crosses = (vy > py) != (wy > py)  # N x V: edge straddles the horizontal line through p
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = vx + (py - vy) * (wx - vx) / (wy - vy)
        odd = (crosses & (px < x_at)).sum(axis=1) % 2 == 1
        inside |= odd & ~_on_boundary(pts, vx, vy, wx, wy)
    return inside


def _on_boundary(pts: np.ndarray, vx, vy, wx, wy) -> np.ndarray:
    """Points on a polygon edge (shapely's ``contains`` excludes the boundary)."""
    px, py = pts[:, :1], pts[:, 1:]
    cross = (wx - vx) * (py - vy) - (wy - vy) * (px - vx)
    within = ((px - vx) * (px - wx) <= 0) & ((py - vy) * (py - wy) <= 0)
    return np.any((cross == 0) & within, axis=1)


def _present(kp: np.ndarray) -> np.ndarray:
    """A joint is present unless x, y and v are all 0 (poseval's converter). kp: ``17 x 3``."""
    return ~np.all(kp == 0, axis=1)


def _keypoints(ann: dict, name: str) -> np.ndarray:
    kp = np.asarray(ann["keypoints"], dtype=np.float64)
    if kp.size != NUM_JOINTS * 3:
        raise DataLayoutError(f"{name}: annotation keypoints must hold {NUM_JOINTS * 3} numbers, got {kp.size}")
    return kp.reshape(NUM_JOINTS, 3)


def _scores(ann: dict) -> np.ndarray:
    scores = ann.get("scores")
    if not scores:
        return np.full(NUM_JOINTS, MISSING_SCORE)
    return np.asarray(scores, dtype=np.float64).reshape(NUM_JOINTS)


def evaluate_ap(gt: Source, pred: Source) -> APResult:
    """Per-joint AP (percent) of predictions ``pred`` against ground truth ``gt``, as poseval.

    Each may be a folder of per-video jsons, one json file, a loaded dict, or a list of these;
    videos are paired by file name (a merged file is split by the folder of its frames). Every
    ground-truth video needs a prediction video with the same number of frames, in the same order.
    """
    gt_docs = load_documents(gt)
    pred_docs = load_documents(pred)
    where = f" in {pred}" if isinstance(pred, (str, Path)) else ""

    scores: list[list[float]] = [[] for _ in range(NUM_JOINTS)]
    labels: list[list[bool]] = [[] for _ in range(NUM_JOINTS)]
    n_gt = np.zeros(NUM_JOINTS, dtype=int)
    n_frames = n_gt_people = n_pred_people = 0
    if len(gt_docs) == 1 and len(pred_docs) == 1 and not (_is_dir(gt) or _is_dir(pred)):
        pred_docs = {next(iter(gt_docs)): next(iter(pred_docs.values()))}  # one video each: pair them
    for key in sorted(gt_docs):
        gdoc = gt_docs[key]
        if key not in pred_docs:
            raise MissingFileError(f"no prediction file {key}.json{where} for ground truth {key}.json")
        pdoc = pred_docs[key]
        name = f"prediction {key}.json"
        if len(pdoc["images"]) != len(gdoc["images"]):
            raise DataLayoutError(f"{name}: {len(pdoc['images'])} frames in 'images', the ground truth has "
                             f"{len(gdoc['images'])}; list every frame of the ground-truth file, in order")
        gt_anns = _by_image(gdoc, f"ground truth {key}.json")
        pr_anns = _by_image(pdoc, name)
        for gimg, pimg in zip(gdoc["images"], pdoc["images"]):
            gf, pf = gimg.get("file_name"), pimg.get("file_name")
            if gf and pf and gf != pf:
                raise DataLayoutError(f"{name}: frame {pf!r} is where the ground truth has {gf!r} "
                                 "(poseval pairs frames by position in 'images')")
            anns = gt_anns.get(gimg["id"], [])
            if not anns or gimg.get("is_labeled", True) is False:
                continue
            n_frames += 1
            gts = [_keypoints(a, f"ground truth {key}.json") for a in anns]
            heads = [a.get("bbox_head") for a in anns]
            preds = pr_anns.get(pimg["id"], [])
            _check_track_ids(preds, name, pimg)
            prs = [_keypoints(a, name) for a in preds]
            prs_scores = [_scores(a) for a in preds]
            gts = [np.concatenate([k[:, :2], _present(k)[:, None]], axis=1) for k in gts]
            prs = [np.concatenate([k[:, :2], _present(k)[:, None]], axis=1) for k in prs]
            if gimg.get("ignore_regions_x"):
                rx, ry = gimg["ignore_regions_x"], gimg.get("ignore_regions_y") or []
                gts, heads = _drop_ignored(gts, heads, rx, ry)
                prs, prs_scores = _drop_ignored(prs, prs_scores, rx, ry)
            n_gt_people += len(gts)
            n_pred_people += len(prs)
            for kp in gts:
                n_gt += (kp[:, 2] > 0).astype(int)
            sizes = [_head_size_of(kp, hb, f"ground truth {key}.json", gimg) for kp, hb in zip(gts, heads)]
            assigned, match = match_frame(gts, prs, sizes)
            for p, (pts, s) in enumerate(zip(prs, prs_scores)):
                g = assigned[p]
                for j in np.flatnonzero(pts[:, 2] > 0):
                    scores[j].append(float(s[j]))
                    labels[j].append(bool(match[p, g, j]) if g >= 0 else False)

    per_joint, precision, recall, n_tp = {}, {}, {}, {}
    for j in EVAL_JOINTS:
        name = JOINT_NAMES[j]
        ap, pre, rec, tp = _joint_ap(np.asarray(scores[j], float), np.asarray(labels[j], bool), int(n_gt[j]))
        per_joint[name], precision[name], recall[name], n_tp[name] = ap, pre, rec, tp
    table = {group: float(np.mean([per_joint[JOINT_NAMES[j]] for j in joints]))
             for group, joints in AP_GROUPS.items()}
    finite = [v for v in per_joint.values() if not math.isnan(v)]
    table["Mean"] = float(np.mean(finite)) if finite else float("nan")
    return APResult(
        per_joint=per_joint, table=table,
        num_gt_joints={JOINT_NAMES[j]: int(n_gt[j]) for j in EVAL_JOINTS},
        num_pred_joints={JOINT_NAMES[j]: len(scores[j]) for j in EVAL_JOINTS},
        num_frames=n_frames, num_gt_people=n_gt_people, num_pred_people=n_pred_people,
        precision=precision, recall=recall, num_true_positives=n_tp,
    )


def _head_size_of(kp: np.ndarray, bbox_head: Any, name: str, image: dict) -> float:
    """Head size of a ground-truth person; a person with points needs a 4-number ``bbox_head``."""
    if bbox_head is not None and len(bbox_head) == 4:
        return head_size(bbox_head)
    if not kp[:, 2].any():
        return float("nan")  # no joint to match, the head size is never used
    raise DataLayoutError(f"{name}: an annotation of image {image['id']} ({image.get('file_name')}) has keypoints "
                     "but no 4-number 'bbox_head' (needed for the PCKh head size)")


def _by_image(doc: dict, name: str) -> dict[Any, list[dict]]:
    """Annotations grouped by ``image_id``; an id not among the file's images is an error."""
    ids = {img["id"] for img in doc["images"]}
    out: dict[Any, list[dict]] = {}
    for i, ann in enumerate(doc["annotations"]):
        if ann["image_id"] not in ids:
            raise DataLayoutError(f"{name}: annotations[{i}].image_id {ann['image_id']!r} is not an id in its "
                             "'images' (keep the ground truth's image ids)")
        out.setdefault(ann["image_id"], []).append(ann)
    return out


def _check_track_ids(preds: list[dict], name: str, image: dict) -> None:
    """poseval refuses a frame whose predictions share a ``track_id``."""
    ids = [a["track_id"] for a in preds if a.get("track_id") is not None]
    if len(ids) != len(set(ids)):
        raise DataLayoutError(f"{name}: predictions of image {image['id']} ({image.get('file_name')}) share a "
                         "'track_id'; poseval requires them unique per frame")


def _drop_ignored(people: list[np.ndarray], extra: list, rx: list, ry: list) -> tuple[list, list]:
    """Drop points inside ignore regions; remove people left without points (as poseval)."""
    kept, kept_extra = [], []
    for kp, e in zip(people, extra):
        kp = kp.copy()
        kp[points_in_regions(kp[:, :2], rx, ry), 2] = 0
        if kp[:, 2].any():
            kept.append(kp)
            kept_extra.append(e)
    return kept, kept_extra


def _joint_ap(scores: np.ndarray, labels: np.ndarray, total_pos: int) -> tuple[float, float, float, int]:
    """``(AP, precision, recall, TP)`` for one joint, in percent, as poseval's ``computeMetrics``.

    scores, labels: ``N`` predicted joints of all frames (label = true positive).
    """
    if len(scores) == 0:
        return 0.0, 0.0, 0.0, 0
    # poseval's computeRPC: default (unstable) argsort of the float64 scores, reversed. A stable
    # sort would rank tied scores differently and change AP on sets with ties.
    order = np.asarray(scores, dtype=np.float64).argsort()[::-1]
    tp = np.cumsum(labels[order].astype(float))
    precision = tp / np.arange(1, len(order) + 1)
    if total_pos == 0:
        return float("nan"), 100.0 * float(precision[-1]), float("nan"), int(tp[-1])
    recall = tp / total_pos
    return 100.0 * voc_ap(recall, precision), 100.0 * float(precision[-1]), 100.0 * float(recall[-1]), int(tp[-1])


def _is_dir(source: Any) -> bool:
    return isinstance(source, (str, Path)) and Path(source).is_dir()
