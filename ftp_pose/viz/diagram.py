"""A schematic of the FTP-Pose pipeline, drawn with matplotlib (the README's first figure).

``python -c "from ftp_pose.viz.diagram import save_pipeline_diagram; save_pipeline_diagram()"``
writes ``figures/pipeline.png``.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ftp_pose.io import atomic_write
from ftp_pose.paths import figures_dir

# (x, y, w, h, label, colour) in axis units (0..16 x 0..6)
_BOXES = {
    "frames": (0.2, 2.2, 1.6, 1.6, "3 frames\n$I_{t-1}, I_t, I_{t+1}$\n256 x 192", "#e8e8e8"),
    "vit": (2.3, 2.2, 1.5, 1.6, "ViT\nbackbone\n(patch 16)\n3 x 192 tokens", "#cfe2f3"),
    "up": (4.4, 3.9, 1.8, 1.3, "key frame\n16x12 -> 64x48\n(3072 tokens)", "#fce5cd"),
    "dpc_h": (6.8, 3.9, 1.6, 1.3, "DPC-KNN\nprune 1/eps_h", "#f4cccc"),
    "st": (4.4, 0.8, 1.8, 1.3, "spatio-temporal\nblocks\n(576 tokens)", "#d9ead3"),
    "dpc_l": (6.8, 0.8, 1.6, 1.3, "DPC-KNN\nprune 1/eps_l", "#f4cccc"),
    "refine": (9.0, 2.2, 1.7, 1.6, "refinement\nblocks\n(shared weights)", "#d9d2e9"),
    "fuse": (11.3, 2.2, 1.8, 1.6, "cross-attention\nQ: 64x48 grid\nK,V: kept tokens", "#fff2cc"),
    "head": (13.7, 2.2, 1.9, 1.6, "MLP + head\n17 heatmaps\n64 x 48", "#e8e8e8"),
}
_ARROWS = [
    ("frames", "vit"), ("vit", "up"), ("vit", "st"), ("up", "dpc_h"), ("st", "dpc_l"),
    ("dpc_h", "refine"), ("dpc_l", "refine"), ("refine", "fuse"), ("fuse", "head"),
]


def draw_pipeline(ax: plt.Axes | None = None) -> plt.Figure:
    """Draw the pipeline: backbone, high-/low-resolution branches with DPC pruning, fusion, head."""
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 4.6))
    ax.set_xlim(0, 16)
    ax.set_ylim(0, 6)
    ax.axis("off")
    centres = {}
    for name, (x, y, w, h, label, colour) in _BOXES.items():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=colour, ec="#444444"))
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=8.5)
        centres[name] = (x, y, w, h)
    for a, b in _ARROWS:
        xa, ya, wa, ha = centres[a]
        xb, yb, wb, hb = centres[b]
        ax.add_patch(FancyArrowPatch((xa + wa, ya + ha / 2), (xb, yb + hb / 2),
                                     arrowstyle="-|>", mutation_scale=12, color="#444444"))
    ax.text(5.3, 5.55, "high-resolution branch (fine joints)", ha="left", fontsize=9, color="#b45f06")
    ax.text(5.3, 0.35, "low-resolution branch (temporal context)", ha="left", fontsize=9, color="#38761d")
    ax.set_title("FTP-Pose: multi-grained feature encoder with density-peaks token pruning", fontsize=11)
    return ax.figure


def save_pipeline_diagram(path: str | Path | None = None) -> Path:
    """Draw the pipeline and write it (atomically) to ``path`` (default ``figures/pipeline.png``)."""
    path = Path(path) if path is not None else figures_dir() / "pipeline.png"
    fig = draw_pipeline()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=130, format="png"))
    plt.close(fig)
    return path
