"""The demo: an annotated video from the sample mp4, and clear errors for bad inputs."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from _engine_dummies import make_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def _mp4(root: Path) -> Path:
    return root / "videos" / "000001_mpiinew_test" / "000001_mpiinew_test.mp4"


def test_demo_writes_an_annotated_video(posetrack18_root: Path, tmp_path: Path, tiny_ckpt: Path) -> None:
    from ftp_pose.cli import main

    out = tmp_path / "demo"
    assert main(["demo", str(_mp4(posetrack18_root)), "--checkpoint", str(tiny_ckpt), "--out", str(out),
                 "--max-frames", "3", "--show-tokens"]) == 0
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 3 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 1280
    cap.release()
    assert len(list(out.glob("frame_*.png"))) >= 2


def test_demo_with_boxes_on_a_frame_folder(posetrack18_root: Path, tmp_path: Path, tiny_ckpt: Path) -> None:
    import json

    from ftp_pose.engine.demo import run_demo

    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"frame_index": 1, "bbox": [500, 150, 200, 450], "score": 0.9},
                                 {"frame_index": 1, "bbox": [0, 0, 50, 50], "score": 0.1}]))
    res = run_demo(_mp4(posetrack18_root).parent, tiny_ckpt, boxes=boxes, out_dir=tmp_path, max_frames=2)
    assert res["n_frames"] == 2 and res["n_people"] == 1  # the low-score box is skipped
    assert Path(res["video"]).is_file()


def test_demo_errors(tmp_path: Path, tiny_ckpt: Path, posetrack18_root: Path) -> None:
    from ftp_pose.engine.demo import run_demo

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(ValueError, match="cannot read video .*broken.mp4"):
        run_demo(bad, tiny_ckpt, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="video not found"):
        run_demo(tmp_path / "missing.mp4", tiny_ckpt, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*nope.pt"):
        run_demo(_mp4(posetrack18_root), tmp_path / "nope.pt", out_dir=tmp_path)
