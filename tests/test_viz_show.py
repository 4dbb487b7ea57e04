"""The `show` command and the skeleton drawing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ftp_pose.keypoints import LEFT_COLOR, RIGHT_COLOR
from ftp_pose.viz.skeleton import draw_box, draw_skeleton


def test_draw_skeleton_colours_sides_and_skips_hidden() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    j = np.zeros((17, 3))
    j[9] = (20, 50, 1)    # left wrist
    j[10] = (80, 50, 1)   # right wrist
    j[0] = (50, 10, 0)    # hidden nose
    out = draw_skeleton(img, j, radius=4)
    assert img.sum() == 0  # input untouched
    assert tuple(out[50, 20]) == LEFT_COLOR and tuple(out[50, 80]) == RIGHT_COLOR
    assert out[10, 50].sum() == 0
    scored = draw_skeleton(img, j, scores=np.r_[np.ones(10), 0.1 * np.ones(7)], thresh=0.3, radius=4)
    assert scored[50, 20].sum() > 0 and scored[50, 80].sum() == 0
    with pytest.raises(ValueError, match="17 x 2"):
        draw_skeleton(img, j[:5])
    assert draw_box(img, [10, 10, 30, 30])[10, 25].sum() > 0


def test_show_writes_both_figures(tmp_path: Path, monkeypatch, synth_root: Path) -> None:
    from ftp_pose.cli import main
    from ftp_pose.viz import show

    figs = tmp_path / "figs"
    monkeypatch.setenv("FTP_POSE_FIGURES", str(figs))
    monkeypatch.setattr(show, "SYNTH_DEMO_DIR", tmp_path / "synth_demo")
    assert main(["show", "--n", "2"]) == 0
    for name in ("samples_synthetic.png", "samples_posetrack18.png"):
        data = (figs / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert (tmp_path / "synth_demo" / "annotations" / "val.json").is_file()
    assert main(["show", "--data", str(synth_root), "--n", "1", "--out", str(figs / "x.png")]) == 0
    assert (figs / "x.png").is_file()
    assert not list(figs.glob("*.tmp*"))
