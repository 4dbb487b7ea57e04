"""The DPC decision graph (density ``rho`` against distance-to-denser ``delta``), static and interactive.

In density peaks clustering (Rodriguez & Laio 2014) cluster centres are the points that are
both dense (large ``rho``) and far from any denser point (large ``delta``): they stand out in
the top-right of the ``rho``-``delta`` plane. FTP-Pose keeps the tokens with the largest
``score = rho * delta`` (docs/method.md, Eqs. (1)-(2)); the decision graph shows which ones.

Also here: a 2-D toy set for the first notebook and :func:`save_figure` (atomic, into
``figures/``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ftp_pose.io import atomic_write
from ftp_pose.paths import figures_dir
from ftp_pose.viz.tokens import index_to_cell, kept_mask

__all__ = ["DecisionGraph", "decision_graph_data", "plot_decision_graph", "decision_graph_plotly",
           "toy_blobs", "save_figure"]


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, np.float64)


@dataclass
class DecisionGraph:
    """Per-token decision-graph data (all arrays have length ``N``).

    ``frame/row/col`` locate each token on its grid (all zeros when no grid was given),
    ``kept`` marks the kept tokens, ``rank`` is the position by descending score (0 = best).
    """

    rho: np.ndarray
    delta: np.ndarray
    score: np.ndarray
    kept: np.ndarray
    rank: np.ndarray
    frame: np.ndarray
    row: np.ndarray
    col: np.ndarray

    def __len__(self) -> int:
        return len(self.rho)

    @property
    def num_kept(self) -> int:
        return int(self.kept.sum())

    def labels(self) -> list[str]:
        """One hover label per token: ``frame f, (row, col)``."""
        return [f"frame {f}, (row {r}, col {c})" for f, r, c in zip(self.frame, self.row, self.col)]


def decision_graph_data(rho: Any, delta: Any, kept_index: Any | None = None,
                        grid_size: Sequence[int] | None = None, num_frames: int = 1) -> DecisionGraph:
    """Collect ``rho``, ``delta`` (``N`` each, one batch element) and the kept tokens.

    ``kept_index`` (``M``): indices of the kept tokens (None: nothing marked). With ``grid_size``
    ``(rows, cols)`` and ``num_frames`` (``N = num_frames * rows * cols``), token ``i`` gets its
    ``(frame, row, col)``.
    """
    r, d = _np(rho).reshape(-1), _np(delta).reshape(-1)
    if r.shape != d.shape:
        raise ValueError(f"rho and delta must have the same length, got {r.shape} and {d.shape}")
    n = r.size
    score = r * d
    order = np.argsort(-score, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    kept = kept_mask(kept_index, n) if kept_index is not None else np.zeros(n, bool)
    if grid_size is not None:
        if n != num_frames * grid_size[0] * grid_size[1]:
            raise ValueError(f"{n} tokens do not make {num_frames} frame(s) of {grid_size[0]} x {grid_size[1]}")
        frame, row, col = index_to_cell(np.arange(n), grid_size, num_frames)
    else:
        frame = row = np.zeros(n, np.int64)
        col = np.arange(n)
    return DecisionGraph(r, d, score, kept, rank, frame, row, col)


def plot_decision_graph(g: DecisionGraph, ax: Any = None, title: str = "decision graph", log_rho: bool = False,
                        kept_label: str = "kept", s: float = 12.0, color_by_score: bool = False) -> Any:
    """Matplotlib scatter of ``delta`` against ``rho``; kept tokens in red (outlined). Returns the Axes.

    ``color_by_score``: colour every token by ``score = rho * delta`` (viridis, with a colour bar)
    instead of grey; kept tokens are then drawn as red-edged circles on top of their colour.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    x = np.log(np.maximum(g.rho, 1e-300)) if log_rho else g.rho
    if color_by_score:
        sc = ax.scatter(x, g.delta, s=s, c=g.score, cmap="viridis", linewidths=0, label="score rho x delta")
        ax.figure.colorbar(sc, ax=ax, shrink=0.8, label="score")
        if g.kept.any():
            ax.scatter(x[g.kept], g.delta[g.kept], s=s * 2.5, facecolors="none", edgecolors="tab:red",
                       linewidths=1.0, label=f"{kept_label}: {g.num_kept}/{len(g)}")
    else:
        ax.scatter(x[~g.kept], g.delta[~g.kept], s=s, c="0.6", alpha=0.7, linewidths=0, label="pruned")
        if g.kept.any():
            ax.scatter(x[g.kept], g.delta[g.kept], s=s * 1.6, c="tab:red", edgecolors="k", linewidths=0.4,
                       label=f"{kept_label}: {g.num_kept}/{len(g)}")
    ax.set_xlabel("log density  log rho" if log_rho else "density  rho")
    ax.set_ylabel("distance to a denser token  delta")
    ax.set_title(title)
    if g.kept.any():
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax


def decision_graph_plotly(g: DecisionGraph, title: str = "decision graph", log_rho: bool = False) -> Any:
    """Interactive plotly figure: hover shows each token's (frame, row, col), rho, delta, score and rank."""
    import plotly.graph_objects as go

    labels = np.asarray(g.labels())
    x = np.log(np.maximum(g.rho, 1e-300)) if log_rho else g.rho
    fig = go.Figure()
    for name, m, color, size in (("pruned", ~g.kept, "#9e9e9e", 6), ("kept", g.kept, "#d62728", 8)):
        if not m.any():
            continue
        custom = np.stack([g.score[m], g.rank[m]], axis=1)
        fig.add_trace(go.Scatter(
            x=np.round(x[m], 6), y=np.round(g.delta[m], 6), mode="markers", name=f"{name} ({int(m.sum())})",
            text=labels[m].tolist(), customdata=np.round(custom, 6), marker=dict(color=color, size=size, line=dict(width=0.5)),
            hovertemplate="%{text}<br>rho=%{x:.4g}<br>delta=%{y:.4g}<br>score=%{customdata[0]:.4g}"
                          "<br>rank %{customdata[1]}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="log rho" if log_rho else "rho", yaxis_title="delta",
                      width=620, height=440, template="plotly_white", margin=dict(l=60, r=20, t=50, b=50))
    return fig


def toy_blobs(n_per_blob: int = 60, centers: Sequence[Sequence[float]] = ((0, 0), (4, 1), (1.5, 4.5)),
              spreads: Sequence[float] = (0.5, 0.8, 0.6), n_noise: int = 20, seed: int = 0) -> np.ndarray:
    """A 2-D toy set, ``N x 2`` float32: Gaussian blobs plus uniform background noise (seeded)."""
    rng = np.random.default_rng(seed)
    pts = [rng.normal(c, s, size=(n_per_blob, 2)) for c, s in zip(centers, spreads)]
    lo, hi = np.min(centers, 0) - 2, np.max(centers, 0) + 2
    pts.append(rng.uniform(lo, hi, size=(n_noise, 2)))
    return np.concatenate(pts).astype(np.float32)


def save_figure(fig: Any, name: str, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically as ``figures/<name>`` (``.png`` added if missing)."""
    path = figures_dir() / (name if Path(name).suffix else f"{name}.png")

    def write(tmp: str) -> None:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png",
                    metadata={"Software": None} if path.suffix in ("", ".png") else None)
    return atomic_write(path, write)
