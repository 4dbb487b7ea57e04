"""Shared test fixtures (quick mode and the Agg backend are set in the root conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ftp_pose.paths import data_root


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """Root of the real sample data (``$FTP_POSE_DATA``, else the bundled ``data/samples``)."""
    root = data_root()
    if not (root / "posetrack18").is_dir():
        pytest.fail(f"real sample data not found at {root} (the bundled data/samples, or $FTP_POSE_DATA)")
    return root


@pytest.fixture(scope="session")
def posetrack18_root(sample_root: Path) -> Path:
    """The real PoseTrack 2018 sample folder (``annotations/``, ``images/``, ``videos/``)."""
    return sample_root / "posetrack18"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A tiny synthetic PoseTrack-format set (2 train + 1 val videos x 6 frames, 256x192 frames,
    seed 0) rendered once per test session; ``annotations/{train,val}.json`` and per-video jsons."""
    from ftp_pose.data.synthetic import generate_synthetic_posetrack

    root = tmp_path_factory.mktemp("synth")
    generate_synthetic_posetrack(root, n_videos=2, n_val_videos=1, n_frames=6, seed=0, size=(256, 192),
                                 progress=False)
    return root


@pytest.fixture(scope="session")
def sample_file():
    """``sample_file("videos/openpose_video.avi")``: a sample file that may not be bundled, found in
    ``data_root()`` or ``../shared/data``; the test is skipped, naming the file, when neither has it."""
    from ftp_pose.paths import SHARED_DATA, find_sample_file

    def find(relative: str) -> Path:
        path = find_sample_file(relative)
        if path is None:
            pytest.skip(f"{relative} is not bundled (licence) and not in {data_root()} or {SHARED_DATA}; "
                        "set FTP_POSE_DATA to a folder that has it")
        return path
    return find
