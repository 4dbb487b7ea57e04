"""The notebooks' FULL-mode code path, run on the CPU with tiny sizes (``FTP_POSE_QUICK=0 FTP_POSE_TINY=1``).

nbval runs the notebooks in quick mode; this test executes them (nbclient) the way a GPU machine
runs them (paper config, ``runs/notebook_<mode>``, training from scratch), only with tiny sizes
from :func:`ftp_pose.notebook.settings`, so that the full mode runs on a GPU unchanged.
Figures go to a temporary folder (``FTP_POSE_FIGURES``) so that the committed ones stay.
"""
from __future__ import annotations

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from ftp_pose.paths import REPO_ROOT

pytestmark = pytest.mark.slow

#: every notebook present (03 trains the tiny run that the later ones load, so the sorted order matters)
NOTEBOOKS = sorted(p.stem for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def tiny_full_env(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("FTP_POSE_QUICK", "0")
    mp.setenv("FTP_POSE_TINY", "1")
    mp.setenv("FTP_POSE_FIGURES", str(tmp_path_factory.mktemp("figures")))
    mp.setenv("TQDM_DISABLE", "1")
    for name in ("FTP_POSE_CHECKPOINT", "FTP_POSE_PRETRAINED"):
        mp.delenv(name, raising=False)
    shutil.rmtree(REPO_ROOT / "runs" / "notebook_tiny", ignore_errors=True)  # train from scratch in 03
    yield
    mp.undo()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_tiny_full_mode(name: str, tiny_full_env) -> None:
    path = REPO_ROOT / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",  # seconds per cell: a hang, not a slow runner
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/markdown", "")
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    if name == "01_density_peaks":
        assert "mode: tiny" in text
    if name == "03_training":
        assert (REPO_ROOT / "runs" / "notebook_tiny" / "best.pt").is_file()
        assert "checkpoint for notebooks 04 and 05: runs/notebook_tiny/best.pt" in text
    if name == "04_evaluation":
        assert "mode: tiny" in text and "runs/notebook_tiny/best.pt" in text   # 04 loads what 03 trained
        assert "this run, synthetic val (gt boxes)" in text
