"""Malformed inputs: each raises an error that names the file and the field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftp_pose.data import PoseTrackClipDataset, load_detections, load_posetrack


@pytest.fixture()
def good(posetrack18_root: Path) -> dict:
    return json.loads((posetrack18_root / "annotations" / "test_posetrack18_val.json").read_text())


def _write(tmp_path: Path, data, name: str = "bad_ann.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_missing_image_file(good: dict, posetrack18_root: Path, tmp_path: Path) -> None:
    good["images"][0]["file_name"] = "images/val/012834_mpii_test/no_such_frame.jpg"
    path = _write(tmp_path, good)
    ds = PoseTrackClipDataset(path, posetrack18_root)  # checked lazily: construction works
    idx = next(i for i, it in enumerate(ds.items) if it.image_id == good["images"][0]["id"])
    with pytest.raises(FileNotFoundError, match=r"no_such_frame\.jpg.*file_name.*bad_ann\.json"):
        ds[idx]
    with pytest.raises(FileNotFoundError, match=r"(?s)1 of 3 image files.*no_such_frame\.jpg.*file_name.*bad_ann\.json"):
        ds.set.check_images(posetrack18_root)


def test_malformed_json(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"images": [ {"id": 1,, }', "broken.json")
    with pytest.raises(ValueError, match=r"malformed json.*broken\.json"):
        load_posetrack(path)


def test_keypoints_not_17x3(good: dict, tmp_path: Path) -> None:
    good["annotations"][2]["keypoints"] = good["annotations"][2]["keypoints"][:48]
    with pytest.raises(ValueError, match=r"bad_ann\.json.*annotations\[2\].*'keypoints'.*17 x 3.*got 48"):
        load_posetrack(_write(tmp_path, good))


def test_video_without_labeled_frame(good: dict, tmp_path: Path) -> None:
    vid = good["images"][1]["vid_id"]
    good["images"][1]["is_labeled"] = False
    path = _write(tmp_path, good)
    with pytest.raises(ValueError, match=rf"bad_ann\.json.*video '{vid}' has no labeled frame.*'is_labeled'"):
        load_posetrack(path)
    assert len(load_posetrack(path, require_labels=False).videos) == 3


def test_zero_size_box(good: dict, tmp_path: Path) -> None:
    good["annotations"][5]["bbox"][2] = 0
    with pytest.raises(ValueError, match=r"bad_ann\.json.*annotations\[5\].*'bbox'.*zero or negative size"):
        load_posetrack(_write(tmp_path, good))


def test_negative_head_box(good: dict, tmp_path: Path) -> None:
    good["annotations"][0]["bbox_head"][3] = -4
    with pytest.raises(ValueError, match=r"bad_ann\.json.*annotations\[0\].*'bbox_head'"):
        load_posetrack(_write(tmp_path, good))


def test_annotation_of_unlisted_image(good: dict, tmp_path: Path) -> None:
    good["annotations"][0]["image_id"] = 123
    with pytest.raises(ValueError, match=r"bad_ann\.json.*annotations\[0\].*'image_id' 123"):
        load_posetrack(_write(tmp_path, good))


def test_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing_here\.json"):
        load_posetrack(tmp_path / "nothing_here.json")


@pytest.mark.parametrize("entry,field", [({"image_id": 1, "score": 0.5}, "bbox"),
                                         ({"image_id": 1, "bbox": [0, 0, 5], "score": 0.5}, "bbox"),
                                         ({"image_id": 1, "bbox": [0, 0, 5, 0], "score": 0.5}, "bbox"),
                                         ({"image_id": 1, "bbox": [0, 0, 5, 5], "score": "high"}, "score")])
def test_malformed_detections(entry: dict, field: str, tmp_path: Path) -> None:
    path = _write(tmp_path, [{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 0.9}, entry], "dets.json")
    with pytest.raises(ValueError, match=rf"dets\.json.*detection #1.*'{field}'"):
        load_detections(path)
