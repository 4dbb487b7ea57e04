"""Known bad input gives ONE line on stderr naming the file or key, and exit code 2 (``--debug``: traceback)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _engine_dummies import make_tiny_checkpoint
from ftp_pose.paths import REPO_ROOT


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "ftp_pose", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _one_line(res: subprocess.CompletedProcess, *names: str) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert len(lines) == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def test_missing_video(tmp_path: Path, tiny_ckpt: Path) -> None:
    _one_line(_run("demo", str(tmp_path / "missing.mp4"), "--checkpoint", str(tiny_ckpt), "--out",
                   str(tmp_path / "o"), cwd=tmp_path), "missing.mp4", "not found")


def test_not_a_video(tmp_path: Path, tiny_ckpt: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n")
    _one_line(_run("demo", str(bad), "--checkpoint", str(tiny_ckpt), "--out", str(tmp_path / "o"), cwd=tmp_path),
              "notes.mp4", "cannot read video")


def test_truncated_checkpoint(tmp_path: Path, tiny_ckpt: Path, posetrack18_root: Path) -> None:
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_ckpt.read_bytes()[: tiny_ckpt.stat().st_size // 2])
    video = posetrack18_root / "videos" / "000001_mpiinew_test" / "000001_mpiinew_test.mp4"
    res = _run("demo", str(video), "--checkpoint", str(cut), "--out", str(tmp_path / "o"), cwd=tmp_path)
    _one_line(res, "cut.pt", "checkpoint")
    # --debug (a global flag, before the command) shows the traceback instead
    dbg = _run("--debug", "demo", str(video), "--checkpoint", str(cut), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert dbg.returncode != 0 and "Traceback" in dbg.stderr and "CheckpointError" in dbg.stderr


def test_unknown_set_key(tmp_path: Path) -> None:
    res = _run("train", "--config", str(REPO_ROOT / "configs" / "quick_cpu.yaml"), "--set", "optim.no_such_key=1",
               "--out", str(tmp_path / "run"), cwd=tmp_path)
    _one_line(res, "optim.no_such_key")
    assert not (tmp_path / "run").exists()


def test_show_missing_data_folder(tmp_path: Path) -> None:
    _one_line(_run("show", "--data", str(tmp_path / "nonexistent"), cwd=tmp_path), "nonexistent")


def test_truncated_video(tmp_path: Path, tiny_ckpt: Path) -> None:
    """A video cut in the middle: its header announces 12 frames, 5 can be decoded; nothing is written."""
    import cv2
    import numpy as np

    full, cut = tmp_path / "full.avi", tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(12):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    line = _one_line(_run("demo", str(cut), "--checkpoint", str(tiny_ckpt), "--out", str(tmp_path / "o"),
                          "--detector", "none", cwd=tmp_path), "cut.avi", "truncated")
    assert "5 of the 12 frames" in line
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_unknown_bench_backbone(tmp_path: Path) -> None:
    _one_line(_run("bench", "--backbone", "nosuch", cwd=tmp_path), "--backbone", "nosuch", "base")


def test_synth_into_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("in the way\n")
    _one_line(_run("synth", "--out", str(tmp_path / "a_file" / "synth"), "--videos", "1", "--frames", "2",
                   cwd=tmp_path), "a_file", "cannot create")


def test_evaluate_malformed_json(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"images": [')
    _one_line(_run("evaluate", "--gt", str(bad), "--pred", str(bad), cwd=tmp_path), "broken.json", "malformed json")
