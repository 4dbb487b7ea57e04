"""The real sample bundled in data/samples: the default data root of a fresh clone."""
from __future__ import annotations

from pathlib import Path

import pytest

from ftp_pose import paths


def _no_shared(monkeypatch, tmp_path: Path) -> None:
    """A fresh clone: no $FTP_POSE_DATA and no ../shared/data beside the repository."""
    monkeypatch.delenv("FTP_POSE_DATA", raising=False)
    monkeypatch.setattr(paths, "SHARED_DATA", tmp_path / "no-shared" / "data")


def test_default_root_is_the_bundled_sample(monkeypatch, tmp_path: Path) -> None:
    _no_shared(monkeypatch, tmp_path)
    assert paths.data_root() == paths.REPO_ROOT / "data" / "samples"
    assert paths.posetrack18_sample() == paths.REPO_ROOT / "data" / "samples" / "posetrack18"
    monkeypatch.setenv("FTP_POSE_DATA", str(tmp_path))
    assert paths.data_root() == tmp_path.resolve()  # the variable still points elsewhere


def test_bundled_sample_is_small_complete_and_licensed() -> None:
    root = paths.BUNDLED_DATA
    files = [p for p in root.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    assert size < 8 * 2**20, f"data/samples holds {size / 2**20:.1f} MB (aim < 8 MB, hard limit 15 MB)"
    pt = root / "posetrack18"
    for rel in ("annotations/test_posetrack18_val.json", "annotations/test_posetrack18_human_detections.json",
                "annotations/val/003418_mpii_test.json", "images/val/003418_mpii_test/000000.jpg",
                "mask/val/003418_mpii_test/000000.jpg", "videos/000001_mpiinew_test/000009.jpg",
                "videos/000001_mpiinew_test/000001_mpiinew_test.mp4"):
        assert (pt / rel).is_file(), rel
    assert (root / "videos" / "mmpose_demo.mp4").is_file()
    assert "Apache License" in (root / "LICENSE-mmpose-apache-2.0.txt").read_text()
    readme = (root / "README.md").read_text()
    assert "Apache" in readme and "mmpose" in readme
    # only openly licensed files: the non-commercial / research-only videos stay out
    assert not (root / "videos" / "openpose_video.avi").exists()
    assert not (root / "videos" / "h36m_body3d_demo.mp4").exists()


def test_find_sample_file_falls_back_to_shared(monkeypatch, tmp_path: Path) -> None:
    _no_shared(monkeypatch, tmp_path)
    assert paths.find_sample_file("videos/openpose_video.avi") is None
    shared = tmp_path / "shared" / "data"
    (shared / "videos").mkdir(parents=True)
    (shared / "videos" / "openpose_video.avi").write_bytes(b"x")
    monkeypatch.setattr(paths, "SHARED_DATA", shared)
    assert paths.find_sample_file("videos/openpose_video.avi") == (shared / "videos" / "openpose_video.avi")
    assert paths.find_sample_file("videos/mmpose_demo.mp4") == paths.BUNDLED_DATA / "videos" / "mmpose_demo.mp4"


def test_fresh_clone_show_draws_the_real_sample(monkeypatch, tmp_path: Path) -> None:
    from ftp_pose.cli import main

    _no_shared(monkeypatch, tmp_path)
    monkeypatch.setenv("FTP_POSE_FIGURES", str(tmp_path / "figs"))
    out = tmp_path / "figs" / "real.png"
    assert main(["show", "--real", "--n", "1", "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.parametrize("rel", ["posetrack18/videos/000001_mpiinew_test/000004.jpg"])
def test_notebook_video_frames_are_bundled(monkeypatch, tmp_path: Path, rel: str) -> None:
    _no_shared(monkeypatch, tmp_path)
    from ftp_pose.notebook import VIDEO_DIR

    assert rel.startswith(VIDEO_DIR) and (paths.data_root() / rel).is_file()
