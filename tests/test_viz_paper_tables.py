"""The paper's transcribed tables: shapes, the facts the paper's prose states, and the plot helpers."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from ftp_pose.viz import paper_tables as paper


def test_table_i_rows_have_every_column_and_match_the_prose() -> None:
    for ds, methods in paper.TABLE_I.items():
        for method, row in methods.items():
            assert len(row) == len(paper.TABLE_I_COLUMNS), (ds, method)
    ours = {ds: dict(zip(paper.TABLE_I_COLUMNS, m["FTP-Pose"])) for ds, m in paper.TABLE_I.items()}
    # numbers quoted in the paper's text (section III-B)
    assert ours["PoseTrack2017 val"]["Mean"] == 87.4
    assert ours["PoseTrack2017 val"]["Wrist"] == 84.7 and ours["PoseTrack2017 val"]["Ankle"] == 80.9
    assert (ours["PoseTrack2018 val"]["Mean"], ours["PoseTrack2018 val"]["Wrist"]) == (84.5, 82.2)
    assert (ours["PoseTrack2018 val"]["Knee"], ours["PoseTrack2018 val"]["Ankle"]) == (84.3, 79.1)
    assert ours["PoseTrack2021 val"]["Mean"] == pytest.approx(paper.TABLE_I["PoseTrack2021 val"]["TDMI-ST"][-1] + 0.7)


def test_table_ii_and_iii_agree_with_each_other() -> None:
    assert paper.TABLE_II["ftp_pose"]["map"] == paper.TABLE_III[(6, 6)]          # both are the final model
    assert paper.TABLE_II["multigrained"]["map"] == paper.TABLE_III[(1, 1)]      # (a) = no pruning
    assert paper.TABLE_II["ftp_pose"]["fps"] / paper.TABLE_II["baseline"]["fps"] == pytest.approx(1.938, abs=1e-3)
    grid = np.array(paper.table_iii_grid())
    assert grid.shape == (4, 4)
    i, j = np.unravel_index(grid.argmax(), grid.shape)
    assert (paper.TABLE_III_EPS[j], paper.TABLE_III_EPS[i]) == (6, 6)             # best at eps_h = eps_l = 6


def test_table_markdown_layout_and_errors() -> None:
    text = paper.table_markdown({"ours": {"Head": 50.0, "Mean": 40.25}})
    lines = text.splitlines()
    assert lines[0].startswith("| AP (%) | Head |") and len(lines) == 3
    assert "| ours | 50.0 | n/a |" in lines[2] and lines[2].endswith("40.2 |")
    with pytest.raises(ValueError, match="Neck"):
        paper.table_markdown({"ours": {"Neck": 1.0}})


def test_plot_eps_grid_annotates_every_cell(tmp_path) -> None:
    ax = paper.plot_eps_grid(paper.table_iii_grid(), title="paper")
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 16 and "87.4" in texts and "85.3" in texts
    assert len(ax.patches) == 1                                                     # the best cell
    ax.figure.savefig(tmp_path / "g.png")
    with pytest.raises(ValueError, match="shape"):
        paper.plot_eps_grid(np.zeros((3, 4)))
