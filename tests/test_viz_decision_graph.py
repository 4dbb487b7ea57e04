"""Decision-graph data, the static / interactive plots, the toy set and figure saving."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ftp_pose.models import dpc_knn_scores, prune_tokens
from ftp_pose.viz.decision_graph import (decision_graph_data, decision_graph_plotly, plot_decision_graph,
                                         save_figure, toy_blobs)


def test_decision_graph_data_marks_kept_and_ranks_by_score() -> None:
    rho = np.array([0.9, 0.1, 0.5, 0.8])
    delta = np.array([1.0, 5.0, 0.1, 0.2])
    g = decision_graph_data(rho, delta, kept_index=[0, 1])
    np.testing.assert_allclose(g.score, rho * delta)
    assert g.rank.tolist() == [0, 1, 3, 2]
    assert g.kept.tolist() == [True, True, False, False] and g.num_kept == 2


def test_decision_graph_positions_on_a_grid() -> None:
    g = decision_graph_data(np.ones(2 * 6), np.ones(2 * 6), grid_size=(2, 3), num_frames=2)
    assert (g.frame[7], g.row[7], g.col[7]) == (1, 0, 1)
    assert g.labels()[7] == "frame 1, (row 0, col 1)"
    with pytest.raises(ValueError, match="do not make"):
        decision_graph_data(np.ones(5), np.ones(5), grid_size=(2, 3))


def test_dpc_on_toy_blobs_keeps_one_centre_per_blob() -> None:
    pts = toy_blobs(n_per_blob=50, n_noise=10, seed=0)
    assert pts.shape == (160, 2) and np.array_equal(pts, toy_blobs(n_per_blob=50, n_noise=10, seed=0))
    x = torch.from_numpy(pts)[None]
    rho, delta, score = dpc_knn_scores(x, k=8, tau=1.0)
    _, idx = prune_tokens(x, eps=160 / 3, k=8, tau=1.0)  # keep 3 tokens
    g = decision_graph_data(rho[0], delta[0], idx[0])
    blob_of = np.repeat(np.arange(4), [50, 50, 50, 10])  # 3 = noise
    assert sorted(blob_of[g.kept]) == [0, 1, 2]
    assert set(np.nonzero(g.kept)[0]) == set(np.argsort(-g.score)[:3])


def test_plots_and_save_figure(tmp_path, monkeypatch) -> None:
    import matplotlib.pyplot as plt

    monkeypatch.setenv("FTP_POSE_FIGURES", str(tmp_path))
    g = decision_graph_data(np.linspace(0.1, 1, 12), np.linspace(1, 0.1, 12), [0, 5], grid_size=(3, 4))
    ax = plot_decision_graph(g, title="t")
    assert len(ax.collections) == 2  # pruned and kept
    path = save_figure(ax.figure, "dg_test")
    plt.close(ax.figure)
    assert path == tmp_path / "dg_test.png" and path.read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob("*.tmp*"))
    fig = decision_graph_plotly(g)
    names = [t.name for t in fig.data]
    assert names == ["pruned (10)", "kept (2)"]
    assert list(fig.data[1].text) == ["frame 0, (row 0, col 0)", "frame 0, (row 1, col 1)"]


def test_colour_by_score_draws_all_tokens_and_rings_the_kept() -> None:
    import matplotlib.pyplot as plt

    g = decision_graph_data(np.linspace(0.1, 1, 12), np.linspace(1, 0.1, 12), [0, 5])
    ax = plot_decision_graph(g, color_by_score=True)
    coloured, rings = ax.collections
    np.testing.assert_allclose(coloured.get_array(), g.score)
    assert len(coloured.get_offsets()) == 12 and len(rings.get_offsets()) == 2
    plt.close(ax.figure)
