"""Where the package finds the real sample data and writes figures.

One setting points at the sample data: the environment variable ``FTP_POSE_DATA``.
Unset, it defaults to ``../shared/data`` next to the repository root.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """Root of the real sample data (``$FTP_POSE_DATA`` or ``<repo>/../shared/data``)."""
    env = os.environ.get("FTP_POSE_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def posetrack18_sample() -> Path:
    """Folder of the real PoseTrack 2018 sample (``annotations/``, ``images/``, ``videos/``)."""
    return data_root() / "posetrack18"


def figures_dir() -> Path:
    """Folder for figures written by the CLI, notebooks and benchmarks (created if needed)."""
    env = os.environ.get("FTP_POSE_FIGURES")
    path = Path(env) if env else REPO_ROOT / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def quick_mode() -> bool:
    """True when ``FTP_POSE_QUICK=1``: notebooks and commands use small CPU sizes."""
    return os.environ.get("FTP_POSE_QUICK", "0") not in ("", "0", "false", "False")
