"""PoseTrack per-joint AP (poseval protocol) on cases computed by hand.

The toy frame has two people, A and B, with all 15 evaluated joints annotated (ears empty, as in
PoseTrack) and a 50 x 50 head box: head size = 0.6 * sqrt(50^2 + 50^2) = 42.43 px, so a joint
matches within 21.2 px.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ftp_pose.cli import main as cli_main
from ftp_pose.keypoints import EVAL_JOINTS, JOINT_NAMES, NUM_JOINTS
from ftp_pose.metrics import evaluate_ap, voc_ap, write_posetrack_predictions
from _helpers import person_keypoints

LW, RW = JOINT_NAMES.index("left_wrist"), JOINT_NAMES.index("right_wrist")


def _gt(head: float = 50.0, head_a: float | None = None) -> dict:
    anns = []
    for i, (x0, hb) in enumerate([(100, head_a or head), (600, head)]):
        anns.append({"id": i, "image_id": 1, "track_id": i, "keypoints": person_keypoints(x0).reshape(-1).tolist(),
                     "bbox_head": [x0, 0, hb, hb], "bbox": [x0 - 20, 0, 140, 600]})
    return {"images": [{"id": 1, "file_name": "images/val/v1/000000.jpg", "is_labeled": True, "vid_id": "v1"}],
            "annotations": anns}


def _pred(people: list[tuple[np.ndarray, float]]) -> dict:
    anns = []
    for kp, s in people:
        k = kp.copy()
        k[:, 2] = np.where(kp[:, 2] > 0, s, 0)
        anns.append({"image_id": 1, "keypoints": k.reshape(-1).tolist(), "scores": k[:, 2].tolist()})
    return {"images": [{"id": 1, "is_labeled": True}], "annotations": anns}


A, B = person_keypoints(100), person_keypoints(600)


def test_voc_ap_by_hand() -> None:
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    # FP first, then TP: precision [0, 0.5], recall [0, 0.5] -> area 0.5 * 0.5
    assert voc_ap(np.array([0.0, 0.5]), np.array([0.0, 0.5])) == pytest.approx(0.25)


def test_perfect_predictions_give_100() -> None:
    r = evaluate_ap(_gt(), _pred([(A, 0.9), (B, 0.8)]))
    assert set(r.table) == {"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"}
    assert all(v == pytest.approx(100.0) for v in r.table.values())
    assert r.num_gt_people == 2 and r.num_frames == 1


def test_a_missing_person_halves_recall() -> None:
    # each joint: 2 annotated, 1 TP at precision 1 -> recall 0.5 -> AP = 0.5 * 1 = 50
    r = evaluate_ap(_gt(), _pred([(A, 0.9)]))
    assert all(v == pytest.approx(50.0) for v in r.table.values())


def test_a_swapped_joint_is_one_fp_and_one_miss() -> None:
    swapped = A.copy()
    swapped[[LW, RW]] = A[[RW, LW]]  # 40 px apart: both wrists of A now miss
    r = evaluate_ap(_gt(), _pred([(swapped, 0.9), (B, 0.8)]))
    # wrists: A's (FP, score .9) ranks above B's (TP, .8) -> AP 25 (see test_voc_ap_by_hand)
    assert r.per_joint["left_wrist"] == pytest.approx(25.0)
    assert r.per_joint["right_wrist"] == pytest.approx(25.0)
    assert r.table["Wrist"] == pytest.approx(25.0)
    assert r.table["Elbow"] == pytest.approx(100.0)
    assert r.table["Mean"] == pytest.approx((13 * 100 + 2 * 25) / 15)


def test_head_box_size_sets_the_match_threshold() -> None:
    shifted = A.copy()
    shifted[:, 0] += 15  # 15 px off: inside 0.5 * 42.4 px ...
    assert evaluate_ap(_gt(), _pred([(shifted, 0.9), (B, 0.8)])).table["Mean"] == pytest.approx(100.0)
    # ... but outside 0.5 * 0.6 * sqrt(2) * 20 = 8.5 px: A's prediction becomes a false positive
    # ranked first for every joint -> AP 25 everywhere
    r = evaluate_ap(_gt(head_a=20.0), _pred([(shifted, 0.9), (B, 0.8)]))
    assert all(v == pytest.approx(25.0) for v in r.table.values())


def test_a_false_positive_counts_by_its_rank() -> None:
    far = person_keypoints(1500)
    # ranked first: precision [0, 1/2, 2/3], recall [0, .5, 1] -> envelope 2/3 -> AP 66.7
    high = evaluate_ap(_gt(), _pred([(A, 0.8), (B, 0.8), (far, 0.95)]))
    assert high.table["Mean"] == pytest.approx(200 / 3)
    # ranked last: all recall is reached at precision 1 first -> AP 100 (VOC area ignores the tail)
    low = evaluate_ap(_gt(), _pred([(A, 0.8), (B, 0.8), (far, 0.1)]))
    assert low.table["Mean"] == pytest.approx(100.0)


def test_ignore_regions_drop_points() -> None:
    gt = _gt()
    gt["images"][0]["ignore_regions_x"] = [[1400, 1700, 1700, 1400]]
    gt["images"][0]["ignore_regions_y"] = [[0, 0, 2000, 2000]]
    far = person_keypoints(1500)  # entirely inside the ignore region: not a false positive any more
    r = evaluate_ap(gt, _pred([(A, 0.8), (B, 0.8), (far, 0.95)]))
    assert r.table["Mean"] == pytest.approx(100.0)


def test_unlabeled_frames_are_not_scored() -> None:
    gt = _gt()
    gt["images"][0]["is_labeled"] = False
    r = evaluate_ap(gt, _pred([]))
    assert r.num_frames == 0


def test_perfect_on_the_real_sample_via_the_cli(posetrack18_root: Path, tmp_path: Path) -> None:
    gt_dir = posetrack18_root / "annotations" / "val"
    preds = []
    for f in sorted(gt_dir.glob("*.json")):
        for ann in json.loads(f.read_text())["annotations"]:
            kp = np.asarray(ann["keypoints"], float).reshape(NUM_JOINTS, 3)
            kp[:, 2] = (kp[:, 2] > 0) * 1.0
            preds.append({"image_id": ann["image_id"], "keypoints": kp, "track_id": ann["track_id"]})
    written = write_posetrack_predictions(tmp_path / "pred", gt_dir, preds)
    assert sorted(p.name for p in written) == sorted(p.name for p in gt_dir.glob("*.json"))
    out = tmp_path / "result.json"
    assert cli_main(["evaluate", "--gt", str(gt_dir), "--pred", str(tmp_path / "pred"), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    for col in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"):
        assert res[col] == pytest.approx(100.0)
    assert res["counts"]["gt_people"] == 14
    assert out.with_suffix(".md").is_file()
    # dropping one person lowers the AP of exactly the joints that person had annotated (on a copy
    # of the ground truth without ignore regions, which would otherwise drop some of its joints)
    plain_gt = tmp_path / "gt"
    plain_gt.mkdir()
    for f in gt_dir.glob("*.json"):
        doc = json.loads(f.read_text())
        for img in doc["images"]:
            img.pop("ignore_regions_x", None)
            img.pop("ignore_regions_y", None)
        (plain_gt / f.name).write_text(json.dumps(doc))
    n_gt = evaluate_ap(plain_gt, tmp_path / "pred").num_gt_joints
    first = tmp_path / "pred" / sorted(p.name for p in written)[0]
    doc = json.loads(first.read_text())
    dropped = doc["annotations"].pop(0)
    first.write_text(json.dumps(doc))
    res2 = evaluate_ap(plain_gt, tmp_path / "pred")
    had = {JOINT_NAMES[j] for j in EVAL_JOINTS if dropped["keypoints"][3 * j + 2] > 0}
    assert had
    for name, ap in res2.per_joint.items():
        n = n_gt[name]
        expected = 100.0 * (n - 1) / n if name in had else 100.0
        assert ap == pytest.approx(expected), name


def test_missing_prediction_file_is_named(posetrack18_root: Path, tmp_path: Path) -> None:
    gt_dir = posetrack18_root / "annotations" / "val"
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(sorted(gt_dir.glob("*.json"))[0], pred)
    missing = sorted(gt_dir.glob("*.json"))[1].stem
    with pytest.raises(FileNotFoundError, match=missing):
        evaluate_ap(gt_dir, pred)


@pytest.mark.parametrize("content, field", [
    ("{not json", "malformed json"),
    ('{"images": []}', "annotations"),
    ('{"images": [{"id": 1}], "annotations": [{"image_id": 1, "keypoints": [1, 2, 3]}]}', "keypoints"),
    ('{"images": [{"id": 1}], "annotations": [{"image_id": 1, "keypoints": ' + str([0] * 51)
     + ', "scores": [1, 2]}]}', "scores"),
])
def test_malformed_prediction_files_name_file_and_field(tmp_path: Path, content: str, field: str) -> None:
    bad = tmp_path / "pred" / "v1.json"
    bad.parent.mkdir()
    bad.write_text(content)
    with pytest.raises(ValueError) as e:
        evaluate_ap(_gt(), bad)
    assert "v1.json" in str(e.value) and field in str(e.value)
