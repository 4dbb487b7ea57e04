"""One place where the notebooks read their sizes: quick CPU mode, full mode, and tiny full mode.

* ``FTP_POSE_QUICK=1`` (what ``pytest --nbval`` runs): CPU, small sizes, the cached quick
  checkpoint (``ftp_pose.engine.quick_checkpoint``), short runs.
* otherwise **full** mode: the paper's sizes (base backbone, 256 x 192 crops, 20 epochs) on a GPU
  when there is one.
* ``FTP_POSE_QUICK=0 FTP_POSE_TINY=1``: the full-mode code path with tiny sizes, so that a CPU
  test exercises exactly what a GPU run executes.

Notebooks call :func:`settings` once and pass its fields on; no notebook reads the variables itself.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ftp_pose.paths import quick_mode


@dataclass(frozen=True)
class NotebookSettings:
    """Sizes and switches for one notebook run."""

    #: "quick", "full" or "tiny" (full code path, tiny sizes)
    mode: str
    #: "cuda" when available in full mode, else "cpu"
    device: str
    #: backbone size passed to build_model ("tiny", "small", "base")
    backbone: str
    #: extra build_model keyword arguments (small widths/depths in quick and tiny mode)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    #: training config file for notebook 03, and the --set overrides applied on top of it
    train_config: str = "configs/ftp_pose.yaml"
    train_overrides: tuple[str, ...] = ()
    #: synthetic set used when no PoseTrack folder is given (videos, frames per video)
    synth_videos: int = 64
    synth_frames: int = 12
    #: how many frames/clips the demo and figures use
    n_examples: int = 3
    #: repeats for timings
    repeats: int = 5
    seed: int = 0

    @property
    def quick(self) -> bool:
        return self.mode == "quick"


def settings() -> NotebookSettings:
    """Read ``FTP_POSE_QUICK`` / ``FTP_POSE_TINY`` and return the notebook sizes."""
    if quick_mode():
        return NotebookSettings(
            mode="quick", device="cpu", backbone="tiny",
            model_overrides=dict(embed_dim=96, num_heads=4, depth=2, lrb_depth=1, refine_depth=1),
            train_config="configs/quick_cpu.yaml", synth_videos=32, synth_frames=10,
            n_examples=2, repeats=2,
        )
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if os.environ.get("FTP_POSE_TINY", "0") not in ("", "0"):
        return NotebookSettings(
            mode="tiny", device=device, backbone="tiny",
            model_overrides=dict(embed_dim=64, num_heads=2, depth=1, lrb_depth=1, refine_depth=1),
            train_config="configs/ftp_pose.yaml",
            train_overrides=("optim.epochs=1", "batch_size=2", "workers=0", "model.backbone=tiny",
                             "model.overrides={embed_dim: 64, num_heads: 2, depth: 1, lrb_depth: 1, refine_depth: 1}",
                             "data.max_train_items=4", "data.max_val_items=4", "optim.warmup_iters=1"),
            synth_videos=2, synth_frames=4, n_examples=1, repeats=1,
        )
    return NotebookSettings(mode="full", device=device, backbone="base", train_config="configs/ftp_pose.yaml")
