"""Where the package finds the real sample data and writes figures.

One setting points at the sample data: the environment variable ``FTP_POSE_DATA``.
Unset, it defaults to the real sample bundled with the repository, ``data/samples/`` (about 2 MB of
Apache-2.0 files from mmpose: the PoseTrack 2018 sample and one short video; see its README).

Files that are not bundled (longer videos whose licences forbid redistribution) are looked up by
:func:`find_sample_file` in ``data_root()`` and then in ``../shared/data`` next to the repository,
where this project's workplace keeps a larger sample.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent

#: the real sample bundled with the repository (the default data root)
BUNDLED_DATA: Path = REPO_ROOT / "data" / "samples"

#: a larger sample beside the repository (only in the project's workplace; optional)
SHARED_DATA: Path = REPO_ROOT.parent / "shared" / "data"


def data_root() -> Path:
    """Root of the real sample data: ``$FTP_POSE_DATA`` if set, else the bundled ``<repo>/data/samples``."""
    env = os.environ.get("FTP_POSE_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return BUNDLED_DATA.resolve()


def find_sample_file(relative: str | Path) -> Path | None:
    """``data_root()/relative`` if it exists, else ``../shared/data/relative`` if that exists, else None.

    For sample files that are not bundled (e.g. ``videos/openpose_video.avi``); callers skip or
    explain when None comes back.
    """
    for root in (data_root(), SHARED_DATA):
        path = Path(root) / relative
        if path.exists():
            return path.resolve()
    return None


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
