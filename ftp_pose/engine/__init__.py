"""ftp_pose.engine: training (``train``), inference and evaluation (``inference``, ``evaluate``), the demo.

Modules: ``config`` (TrainConfig, YAML + ``--set``), ``train`` (the loop), ``optim`` (AdamW, layer
decay, warm-up + step LR), ``checkpoint``, ``distributed``, ``run_log`` (metrics.csv, curves.png),
``inference`` (predict, evaluate_checkpoint), ``evaluate`` (the ``evaluate`` command), ``demo``,
``quick`` (the cached quick CPU checkpoint).
"""
from __future__ import annotations

__all__ = ["quick_checkpoint"]


def __getattr__(name: str):
    # imported lazily: ``import ftp_pose.engine`` stays cheap
    if name == "quick_checkpoint":
        from ftp_pose.engine.quick import quick_checkpoint
        return quick_checkpoint
    raise AttributeError(f"module 'ftp_pose.engine' has no attribute {name!r}")
