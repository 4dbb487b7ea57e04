"""The finer rules of the official poseval tool, each on a case computed by hand.

Toy frame: people A and B with all 15 evaluated joints annotated (ears empty), joints >= 30 px
apart, head box 50 x 50 -> head size 0.6 * sqrt(2) * 50 = 42.4 px, match radius 21.2 px.
VOC area by hand: ranking TP, FP, TP (2 gt joints) -> precision 1, .5, .667 at recall .5, .5, 1
-> envelope 1 then .667 -> AP = .5 * 1 + .5 * .667 = 83.3; ranking FP, TP, TP -> 66.7.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ftp_pose.keypoints import EVAL_JOINTS, JOINT_NAMES, NUM_JOINTS
from ftp_pose.metrics import evaluate_ap, load_posetrack_json, match_frame, write_posetrack_predictions
from ftp_pose.metrics.posetrack_ap import points_in_regions, voc_ap
from _helpers import person_keypoints

LA = JOINT_NAMES.index("left_ankle")


A, B, FAR = person_keypoints(100), person_keypoints(600), person_keypoints(1500)


def _images(n: int = 1) -> list[dict]:
    return [{"id": 100 + i, "file_name": f"images/val/v1/{i:06d}.jpg", "is_labeled": True, "vid_id": "v1"}
            for i in range(n)]


def _gt(people: list[np.ndarray], image_ids: list[int] | None = None, n_images: int = 1) -> dict:
    ids = image_ids or [100] * len(people)
    anns = [{"id": i, "image_id": im, "track_id": i, "keypoints": kp.reshape(-1).tolist(),
             "bbox_head": [kp[2, 0], 0, 50, 50]} for i, (kp, im) in enumerate(zip(people, ids))]
    return {"images": _images(n_images), "annotations": anns}


def _pred(people: list[tuple[np.ndarray, float | None]], image_ids: list[int] | None = None,
          n_images: int = 1) -> dict:
    ids = image_ids or [100] * len(people)
    anns = []
    for t, ((kp, s), im) in enumerate(zip(people, ids)):
        ann = {"image_id": im, "track_id": t, "keypoints": kp.reshape(-1).tolist()}
        if s is not None:
            ann["scores"] = np.where(kp[:, 2] > 0, s, 0.0).tolist()
        anns.append(ann)
    return {"images": _images(n_images), "annotations": anns}


def _all(result, value: float) -> bool:
    return all(v == pytest.approx(value) for v in result.per_joint.values())


def test_a_person_takes_the_first_of_equally_good_predictions() -> None:
    # both A-predictions match A fully (pck 1): A takes the first listed, the other is a FP
    first_low = evaluate_ap(_gt([A, B]), _pred([(A, 0.8), (A, 0.9), (B, 0.7)]))
    assert _all(first_low, 100 * 2 / 3)  # ranking .9 FP, .8 TP, .7 TP -> 66.7
    first_high = evaluate_ap(_gt([A, B]), _pred([(A, 0.9), (A, 0.8), (B, 0.7)]))
    assert _all(first_high, 100 * 5 / 6)  # ranking .9 TP, .8 FP, .7 TP -> 83.3


def test_a_partly_matching_prediction_loses_all_its_joints() -> None:
    half = A.copy()
    half[EVAL_JOINTS[:7], 0] += 30  # 7 of 15 joints 30 px off: pck 8/15 against A
    r = evaluate_ap(_gt([A, B]), _pred([(half, 0.9), (A, 0.8), (B, 0.7)]))
    # A takes the full match; even the 8 joints of `half` that lie on A are false positives:
    # ranking .9 FP, .8 TP, .7 TP -> 66.7 for every joint
    assert _all(r, 100 * 2 / 3)


def test_match_frame_each_prediction_keeps_only_its_bestperson_keypoints() -> None:
    gt_a, gt_b = np.zeros((NUM_JOINTS, 3)), np.zeros((NUM_JOINTS, 3))
    gt_a[:4] = [[0, 0, 1], [100, 0, 1], [200, 0, 1], [300, 0, 1]]
    gt_b[:4] = [[0, 500, 1], [100, 500, 1], [200, 500, 1], [300, 500, 1]]
    x = np.zeros((NUM_JOINTS, 3))  # 2/4 on A, 1/4 on B -> its best person is A
    x[:3] = [[0, 0, 1], [100, 0, 1], [200, 500, 1]]
    y = gt_a.copy()  # 4/4 on A
    assigned, match = match_frame([gt_a, gt_b], [x, y], [20.0, 20.0])
    # A takes y; x is not offered to B although it matches one of B's joints
    assert assigned.tolist() == [-1, 0]
    assert match.shape == (2, 2, NUM_JOINTS) and match[0, 1, 2] and match[1, 0, :4].all()


def test_frames_are_paired_by_position_not_by_image_id() -> None:
    gt = _gt([A, B])
    pred = _pred([(A, 0.9), (B, 0.8)])
    pred["images"][0]["id"] = 7  # re-indexed consistently in the prediction file: poseval still pairs
    for ann in pred["annotations"]:
        ann["image_id"] = 7
    assert _all(evaluate_ap(gt, pred), 100.0)


@pytest.mark.parametrize("break_it, message", [
    (lambda p: p["images"].append({"id": 101, "file_name": "images/val/v1/000001.jpg"}), "the ground truth has 1"),
    (lambda p: p["images"][0].update(file_name="images/val/v1/000009.jpg"), "pairs frames by position"),
    (lambda p: p["annotations"][0].update(image_id=555), "image_id 555"),
    (lambda p: p["annotations"][1].update(track_id=0), "track_id"),
])
def test_prediction_files_poseval_would_refuse(tmp_path: Path, break_it, message: str) -> None:
    pred = _pred([(A, 0.9), (B, 0.8)])
    break_it(pred)
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt" / "v1.json").write_text(json.dumps(_gt([A, B])))
    (tmp_path / "pred" / "v1.json").write_text(json.dumps(pred))
    with pytest.raises(ValueError, match=message) as e:
        evaluate_ap(tmp_path / "gt", tmp_path / "pred")
    assert "v1.json" in str(e.value)


def test_frames_without_gt_annotations_are_not_scored() -> None:
    # frame 101 is labeled but has no people: poseval drops it, so the prediction there is no FP
    r = evaluate_ap(_gt([A, B], n_images=2), _pred([(A, 0.8), (B, 0.8), (FAR, 0.95)], [100, 100, 101], 2))
    assert r.num_frames == 1 and _all(r, 100.0)
    # a frame whose only person has no keypoints is kept: the prediction there is a FP ranked first
    empty = np.zeros((NUM_JOINTS, 3))
    gt = _gt([A, B, empty], [100, 100, 101], n_images=2)
    r = evaluate_ap(gt, _pred([(A, 0.8), (B, 0.8), (FAR, 0.95)], [100, 100, 101], 2))
    assert r.num_frames == 2 and _all(r, 100 * 2 / 3)


def test_a_joint_is_present_unless_x_y_v_are_all_zero() -> None:
    gt_a = A.copy()
    gt_a[3] = (500, 500, 0)  # left ear with v = 0 but a position: poseval counts it as annotated
    r = evaluate_ap(_gt([gt_a, B]), _pred([(A, 0.9), (B, 0.8)]))
    assert r.num_gt_joints["left_shoulder"] == 2  # (the ear itself is not an evaluated joint)
    pred_a = A.copy()
    pred_a[LA] = (0, 0, 0)  # an absent predicted joint is no prediction at all
    r = evaluate_ap(_gt([A, B]), _pred([(pred_a, 0.9), (B, 0.8)]))
    assert r.num_pred_joints["left_ankle"] == 1
    assert r.per_joint["left_ankle"] == pytest.approx(50.0)  # recall .5 at precision 1


def test_missing_scores_rank_last_at_minus_9999() -> None:
    # ranking: B (.8, TP), FAR (.1, FP), A (no scores -> -9999, TP) -> 83.3
    r = evaluate_ap(_gt([A, B]), _pred([(A, None), (B, 0.8), (FAR, 0.1)]))
    assert _all(r, 100 * 5 / 6)


def test_ties_rank_in_reverse_file_order() -> None:
    # poseval sorts with argsort()[::-1]: of equal scores the one listed last ranks first
    fp_last = evaluate_ap(_gt([A, B]), _pred([(A, 0.5), (B, 0.5), (FAR, 0.5)]))
    assert _all(fp_last, 100 * 2 / 3)  # FP, TP, TP
    fp_first = evaluate_ap(_gt([A, B]), _pred([(FAR, 0.5), (A, 0.5), (B, 0.5)]))
    assert _all(fp_first, 100.0)  # TP, TP, FP


def _poseval_ap(scores: list[float], labels: list[bool], n_gt: int) -> float:
    """poseval's computeRPC + VOCap, transcribed line by line (the oracle for tied scores)."""
    scores_arr = np.append(np.zeros([0, 0], dtype=np.float32), scores)  # float64, as poseval builds it
    labels_arr = np.append(np.zeros([0, 0], dtype=np.int8), labels)
    idxs = np.array(scores_arr).argsort()[::-1]
    labels_sorted = labels_arr[idxs]
    precision, recall, npos = np.zeros(len(idxs)), np.zeros(len(idxs)), 0
    for i in range(len(idxs)):
        npos += labels_sorted[i] == 1
        recall[i], precision[i] = npos / n_gt, npos / (i + 1)
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    for i in range(mpre.size - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return 100 * float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def test_tied_scores_rank_as_poseval_ranks_them() -> None:
    # 60 frames with person A each; predictions are A (TP) or FAR (FP) with scores on a 0.1 grid,
    # so most scores are tied. With more than 16 equal keys numpy's default sort is not stable:
    # poseval's argsort()[::-1] is then neither file order nor reverse file order.
    rng = np.random.default_rng(3)
    n = 60
    hit = rng.random(n) < 0.6
    score = np.round(rng.choice([0.3, 0.5, 0.7], size=n) + 0.0, 1)
    gt = _gt([A] * n, image_ids=[100 + i for i in range(n)], n_images=n)
    pred = _pred([(A if h else FAR, float(s)) for h, s in zip(hit, score)], image_ids=[100 + i for i in range(n)],
                 n_images=n)
    result = evaluate_ap(gt, pred)
    expected = _poseval_ap(score.tolist(), hit.tolist(), n)
    assert _all(result, expected)
    # the test can tell the rankings apart: a stable sort (either direction) gives other values
    for order in (np.argsort(score, kind="stable")[::-1], np.argsort(-score, kind="stable")):
        tp = np.cumsum(hit[order])
        stable_ap = 100 * voc_ap(tp / n, tp / np.arange(1, n + 1))
        assert abs(stable_ap - expected) > 0.1


def test_joints_without_ground_truth() -> None:
    gt_a, gt_b = A.copy(), B.copy()
    gt_a[LA] = gt_b[LA] = 0  # nobody has a left ankle annotated
    with_pred = evaluate_ap(_gt([gt_a, gt_b]), _pred([(A, 0.9), (B, 0.8)]))
    assert math.isnan(with_pred.per_joint["left_ankle"]) and math.isnan(with_pred.table["Ankle"])
    assert with_pred.table["Mean"] == pytest.approx(100.0)  # the mean leaves NaN joints out
    assert json.loads(with_pred.to_json())["Ankle"] is None
    no_pred = evaluate_ap(_gt([gt_a, gt_b]), _pred([(gt_a, 0.9), (gt_b, 0.8)]))
    assert no_pred.per_joint["left_ankle"] == 0.0  # neither gt nor predictions: 0, as poseval


def test_points_in_ignore_regions() -> None:
    square = ([[0, 10, 10, 0]], [[0, 0, 10, 10]])
    pts = np.array([[5, 5], [15, 5], [10, 5], [0, 0], [9.99, 9.99]])
    assert points_in_regions(pts, *square).tolist() == [True, False, False, False, True]  # edge: outside
    ell = ([[0, 10, 10, 5, 5, 0]], [[0, 0, 10, 10, 5, 5]])  # L shape: the notch is outside
    assert points_in_regions(np.array([[2, 2], [2, 8], [8, 8]]), *ell).tolist() == [True, False, True]
    assert not points_in_regions(np.array([[1, 1]]), [[0, 5]], [[0, 5]]).any()  # < 3 vertices: skipped


def test_the_writer_lists_every_frame_and_round_trips(tmp_path: Path) -> None:
    gt = _gt([A, B], n_images=3)
    gt["images"][2]["is_labeled"] = False
    preds = [{"image_id": 100, "keypoints": A * [1, 1, 0.9], "track_id": None},
             {"image_id": 100, "keypoints": B * [1, 1, 0.8], "track_id": 0, "score": 0.7},
             {"image_id": 102, "keypoints": FAR.tolist()}]
    (path,) = write_posetrack_predictions(tmp_path / "pred", gt, preds)
    assert path.name == "v1.json"
    doc = load_posetrack_json(path)
    assert [im["id"] for im in doc["images"]] == [100, 101, 102]  # unlabeled frame 102 listed too
    assert doc["images"][2]["is_labeled"] is False
    assert [a["track_id"] for a in doc["annotations"]] == [1, 0, 0]  # free ids fill the missing one
    assert doc["annotations"][0]["scores"][0] == pytest.approx(0.9) and len(doc["annotations"][0]["keypoints"]) == 51
    assert doc["annotations"][1]["score"] == 0.7 and doc["annotations"][0]["category_id"] == 1
    assert doc["categories"][0]["keypoints"][1] == "head_bottom"
    assert not list((tmp_path / "pred").glob(".*"))  # nothing half-written left behind
    assert _all(evaluate_ap(gt, tmp_path / "pred"), 100.0)  # frame 102 has no gt people: not scored


@pytest.mark.parametrize("preds, message", [
    ([{"image_id": 999, "keypoints": A}], "999"),
    ([{"image_id": 100, "keypoints": A, "track_id": 3}, {"image_id": 100, "keypoints": B, "track_id": 3}],
     "track_id"),
    ([{"image_id": 100, "keypoints": A[:5]}], "17 x 3"),
])
def test_the_writer_refuses_bad_predictions(tmp_path: Path, preds: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_posetrack_predictions(tmp_path, _gt([A, B]), preds)


def test_evaluate_command_scores_and_reports_bad_files(tmp_path: Path) -> None:
    import subprocess
    import sys

    for sub, doc in (("gt", _gt([A, B])), ("pred", _pred([(A, 0.9)]))):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "v1.json").write_text(json.dumps(doc))
    out = tmp_path / "res" / "result.json"
    run = subprocess.run([sys.executable, "-m", "ftp_pose", "evaluate", "--gt", str(tmp_path / "gt"),
                          "--pred", str(tmp_path / "pred"), "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "| Head | Shoulder | Elbow | Wrist | Hip | Knee | Ankle | Mean |" in run.stdout
    res = json.loads(out.read_text())
    assert res["Mean"] == pytest.approx(50.0) and res["per_joint"]["head_bottom"] == pytest.approx(50.0)
    assert res["recall"]["nose"] == pytest.approx(50.0) and res["precision"]["nose"] == pytest.approx(100.0)
    assert "| 50.0 |" in out.with_suffix(".md").read_text()
    (tmp_path / "pred" / "v1.json").write_text("{oops")
    bad = subprocess.run([sys.executable, "-m", "ftp_pose", "evaluate", "--gt", str(tmp_path / "gt"),
                          "--pred", str(tmp_path / "pred")], capture_output=True, text=True)
    assert bad.returncode != 0 and "v1.json" in bad.stderr and "Traceback" not in bad.stderr


def test_non_numeric_keypoints_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "v1.json"
    bad.write_text(json.dumps({"images": [{"id": 100}],
                               "annotations": [{"image_id": 100, "keypoints": ["x"] * 51}]}))
    with pytest.raises(ValueError, match=r"v1\.json: annotations\[0\]\.keypoints must hold 51 numbers"):
        load_posetrack_json(bad)
