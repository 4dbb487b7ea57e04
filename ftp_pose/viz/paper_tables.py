"""The paper's published numbers, for side-by-side display only (never computed here).

Source: "Multi-Grained Feature Pruning for Video-Based
Human Pose Estimation" (FTP-Pose), ICASSP 2025, arXiv:2503.05365; transcribed from the paper's
text (``../shared/paper/ftp_pose_paper.txt``): Table I (per-joint AP on the PoseTrack 2017 /
2018 / 2021 validation sets), Table II (component ablation on PoseTrack2017 val), Table III
(mAP over the pruning ratios on PoseTrack2017 val). All AP values are percent, measured by the
authors on PoseTrack with the official poseval protocol; they are NOT reproduced by this
project's quick CPU runs on synthetic data.

Everything the paper's text prints in these three tables is here, and nothing else: Table I
lists the other methods' rows too; Table II gives params, mAP and FPS only (no GFLOPs); Table III
gives mAP only (no speed or FLOPs per cell).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CITATION", "TABLE_I_COLUMNS", "TABLE_I", "TABLE_II", "TABLE_III_EPS", "TABLE_III", "table_iii_grid",
           "markdown_table", "table_markdown", "plot_eps_grid", "save_eps_grids"]

CITATION = ("FTP-Pose: Multi-Grained Feature Pruning for Video-Based Human Pose Estimation, "
            "ICASSP 2025, arXiv:2503.05365")

TABLE_I_COLUMNS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")

#: Table I: dataset -> method -> AP per column of TABLE_I_COLUMNS (percent, paper)
TABLE_I: dict[str, dict[str, tuple[float, ...]]] = {
    "PoseTrack2017 val": {
        "PoseWarper": (81.4, 88.3, 83.9, 78.0, 82.4, 80.5, 73.6, 81.2),
        "DCPose": (88.0, 88.7, 84.1, 78.4, 83.0, 81.4, 74.2, 82.8),
        "KPM": (89.5, 90.0, 87.6, 81.8, 81.1, 82.6, 76.1, 84.6),
        "M-HANet": (90.3, 90.7, 85.3, 79.2, 83.4, 82.6, 77.8, 84.8),
        "FAMI-Pose": (89.6, 90.1, 86.3, 80.0, 84.6, 83.4, 77.0, 84.8),
        "DSTA": (89.3, 90.6, 87.3, 82.6, 84.5, 85.1, 77.8, 85.6),
        "TDMI-ST": (90.6, 91.0, 87.2, 81.5, 85.2, 84.5, 78.7, 85.9),
        "DiffPose": (89.0, 91.2, 87.4, 83.5, 85.5, 87.2, 80.2, 86.4),
        "FTP-Pose": (89.5, 91.6, 88.3, 84.7, 88.0, 87.8, 80.9, 87.4),
    },
    "PoseTrack2018 val": {
        "PoseWarper": (79.9, 86.3, 82.4, 77.5, 79.8, 78.8, 73.2, 79.7),
        "DCPose": (84.0, 86.6, 82.7, 78.0, 80.4, 79.3, 73.8, 80.9),
        "FAMI-Pose": (85.5, 87.7, 84.2, 79.2, 81.4, 81.1, 74.9, 82.2),
        "M-HANet": (86.7, 88.9, 84.6, 79.2, 79.7, 81.3, 78.7, 82.7),
        "DiffPose": (85.0, 87.7, 84.3, 81.5, 81.4, 82.9, 77.6, 83.0),
        "KPM": (85.1, 88.9, 86.4, 80.7, 80.9, 81.5, 77.0, 83.1),
        "DSTA": (85.9, 88.8, 85.0, 81.1, 81.5, 83.0, 77.4, 83.4),
        "TDMI-ST": (86.7, 88.9, 85.4, 80.6, 82.4, 82.1, 77.6, 83.6),
        "FTP-Pose": (85.2, 89.3, 87.1, 82.2, 84.5, 84.3, 79.1, 84.5),
    },
    "PoseTrack2021 val": {
        "DCPose": (83.2, 84.7, 82.3, 78.1, 80.3, 79.2, 73.5, 80.5),
        "FAMI-Pose": (83.3, 85.4, 82.9, 78.6, 81.3, 80.5, 75.3, 81.2),
        "DSTA": (87.5, 87.0, 84.2, 81.4, 82.3, 82.5, 77.7, 83.5),
        "TDMI-ST": (86.8, 87.4, 85.1, 81.4, 83.8, 82.7, 78.0, 83.8),
        "FTP-Pose": (86.2, 88.4, 85.9, 82.5, 85.1, 83.8, 79.7, 84.5),
    },
}

#: Table II (PoseTrack2017 val): variant -> params (M), mAP, FPS as printed in the paper
TABLE_II: dict[str, dict[str, float]] = {
    "baseline": {"params_m": 72.0, "map": 85.9, "fps": 16.0},
    "multigrained": {"params_m": 78.0, "map": 86.7, "fps": 14.0},   # (a) + multi-grained
    "ftp_pose": {"params_m": 78.0, "map": 87.4, "fps": 31.0},       # (b) + token pruning
}

TABLE_III_EPS = (1, 3, 6, 10)

#: Table III (PoseTrack2017 val): (eps_h, eps_l) -> mAP. Rows of the paper: LRB ratio; columns: HRB ratio.
TABLE_III: dict[tuple[int, int], float] = {
    (eh, el): v
    for el, row in zip(TABLE_III_EPS, ((86.7, 86.9, 86.5, 85.8),
                                       (86.1, 86.2, 86.9, 86.7),
                                       (85.3, 86.5, 87.4, 87.2),
                                       (85.5, 86.2, 87.1, 86.6)))
    for eh, v in zip(TABLE_III_EPS, row)
}


def table_iii_grid() -> list[list[float]]:
    """Table III as a 4 x 4 list: rows eps_l (LRB) 1, 3, 6, 10; columns eps_h (HRB) 1, 3, 6, 10."""
    return [[TABLE_III[(eh, el)] for eh in TABLE_III_EPS] for el in TABLE_III_EPS]


def markdown_table(header: list[str], rows: list[list[object]], floatfmt: str = ".1f") -> str:
    """A markdown table; floats formatted with ``floatfmt``, None shown as ``n/a``."""
    def cell(v: object) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def table_markdown(rows: Mapping[str, Mapping[str, float | None]], columns: Sequence[str] = TABLE_I_COLUMNS,
                   first: str = "AP (%)", floatfmt: str = ".1f") -> str:
    """A Table-I-style markdown table: one row per ``label -> {column: value}``.

    Missing columns show ``n/a``; e.g. ``table_markdown({"paper": dict(zip(TABLE_I_COLUMNS, TABLE_I[ds]["FTP-Pose"]))})``.
    """
    unknown = {c for r in rows.values() for c in r} - set(columns)
    if unknown:
        raise ValueError(f"table_markdown: columns {sorted(unknown)} are not in {list(columns)}")
    body = [[label] + [r.get(c) for c in columns] for label, r in rows.items()]
    return markdown_table([first, *columns], body, floatfmt=floatfmt)


def plot_eps_grid(grid: Any, eps: Sequence[float] = TABLE_III_EPS, ax: Any = None, title: str = "",
                  fmt: str = ".1f", cmap: str = "viridis", best: str | None = "max", cbar_label: str = "") -> Any:
    """Annotated heatmap of a Table-III-style grid; returns the matplotlib Axes.

    ``grid``: len(eps) x len(eps) values, rows eps_l (LRB), columns eps_h (HRB) — the paper's
    layout (``table_iii_grid()``); NaN or None cells (not measured) are shown as "n/a".
    ``best``: outline the "max" or "min" cell (None: none). ``cbar_label``: what the colours show.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    g = np.asarray([[np.nan if v is None else v for v in row] for row in grid], dtype=float)
    if g.shape != (len(eps), len(eps)):
        raise ValueError(f"plot_eps_grid: grid has shape {g.shape}, expected {(len(eps), len(eps))} (eps_l x eps_h)")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3.6))
    im = ax.imshow(g, cmap=cmap)
    lo, hi = np.nanmin(g), np.nanmax(g)
    for (i, j), v in np.ndenumerate(g):
        if np.isnan(v):  # a cell not measured: marked, not coloured
            ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="0.4")
            continue
        light = hi > lo and (v - lo) / (hi - lo) > 0.6
        ax.text(j, i, format(int(v) if fmt == "d" else v, fmt), ha="center", va="center", fontsize=9,
                color="k" if light else "w")
    if best in ("max", "min") and not np.isnan(g).all():
        i, j = np.unravel_index(np.nanargmax(g) if best == "max" else np.nanargmin(g), g.shape)
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    labels = [format(e, "g") for e in eps]
    ax.set_xticks(range(len(eps)), labels)
    ax.set_yticks(range(len(eps)), labels)
    ax.set_xlabel("eps_h (HRB)")
    ax.set_ylabel("eps_l (LRB)")
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=cbar_label)
    return ax


def save_eps_grids(panels: Sequence[tuple[Any, str]], path: Any, eps: Sequence[float] = TABLE_III_EPS,
                   suptitle: str = "") -> Any:
    """Side-by-side :func:`plot_eps_grid` panels ``[(grid, title), ...]`` saved as a png (atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ftp_pose.io import atomic_write

    fig = Figure(figsize=(4.4 * len(panels), 3.9))  # own Agg canvas: the caller's backend is left alone
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (grid, title) in zip(axes[0], panels):
        plot_eps_grid(grid, eps=eps, ax=ax, title=title)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
