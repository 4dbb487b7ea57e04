"""Root pytest settings, loaded for both the unit tests and the nbval notebook runs.

Notebook kernels started by nbval inherit this process's environment, so quick CPU mode is
switched on here, before any kernel starts. Export FTP_POSE_QUICK=0 to test full mode.

Tests never modify tracked files: figures that commands and notebooks write go to a temporary
folder (``$FTP_POSE_FIGURES``), and the session fails if a tracked file changed under it.
"""
import os
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("FTP_POSE_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
if "FTP_POSE_FIGURES" not in os.environ:
    os.environ["FTP_POSE_FIGURES"] = tempfile.mkdtemp(prefix="ftp_pose_figures_")

_ROOT = Path(__file__).resolve().parent


def _modified_tracked_files() -> set[str] | None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_ROOT,
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None  # not a git checkout (an sdist, say): nothing to compare
    return {line[3:] for line in out.splitlines() if line.strip()}


def pytest_sessionstart(session):
    session.config._ftp_pose_dirty = _modified_tracked_files()


def pytest_collection_modifyitems(config, items):
    """Run the browser test last: by then every other test has run."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_ftp_pose_dirty", None)
    after = _modified_tracked_files()
    if before is None or after is None:
        return
    changed = sorted(after - before)
    if changed:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = "tests modified tracked files (tests must write only to temporary or ignored paths): "
        if tr is not None:
            tr.write_line(msg + ", ".join(changed), red=True)
        session.exitstatus = 1
