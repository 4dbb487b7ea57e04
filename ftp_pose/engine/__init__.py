"""ftp_pose.engine: training (``train``), inference and evaluation (``inference``, ``evaluate``).

Modules, each importing only those listed before it (no cycles, ``tests/test_layering.py``):
``config`` (TrainConfig, YAML + ``--set``), ``distributed``, ``optim`` (AdamW, layer decay,
warm-up + step LR), ``run_log`` (metrics.csv, curves.png), ``seeding`` (per-item seeded data order),
``scoring`` (prediction jsons -> AP), ``builders`` (datasets, model, loss, autocast dtype, batches
from a config), ``checkpoint`` (save / load, ``model_from_checkpoint``), ``inference`` (predict,
validate, evaluate_checkpoint), ``evaluate`` (the ``evaluate`` command), ``train`` (``Trainer``,
``train``, the ``train`` command), ``quick`` (the shipped quick CPU checkpoint). The video demo lives in :mod:`ftp_pose.video`, the
experiments (ablate, gpu-check) in :mod:`ftp_pose.experiments`.
"""
from __future__ import annotations

__all__ = ["quick_checkpoint"]


def __getattr__(name: str):
    # imported lazily: ``import ftp_pose.engine`` stays cheap
    if name == "quick_checkpoint":
        from ftp_pose.engine.quick import quick_checkpoint
        return quick_checkpoint
    raise AttributeError(f"module 'ftp_pose.engine' has no attribute {name!r}")
