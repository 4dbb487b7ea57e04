"""The quick CPU checkpoint (``configs/quick_cpu.yaml``) that notebooks, demos and tests use.

The repository ships it as ``checkpoints/quick_cpu.pt`` (weights, config and validation metrics;
no optimizer state), made by :data:`QUICK_COMMAND`. Notebooks run inference with these fixed
weights, so their outputs do not depend on how a particular CPU rounds during training (the
same config trains to slightly different weights on different CPUs).

``quick_checkpoint()`` returns the shipped file when it loads into the current model code;
otherwise the finished run in ``runs/quick_cpu`` (a run counts only once its ``complete.json``
marker exists, see :func:`ftp_pose.engine.checkpoint.completed_checkpoint`); otherwise it trains
(a few minutes on 2 cores), resuming a killed run from its ``last.pt``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ftp_pose.errors import MissingFileError
from ftp_pose.paths import REPO_ROOT

QUICK_CONFIG: Path = REPO_ROOT / "configs" / "quick_cpu.yaml"
#: the shipped quick checkpoint (tracked in git)
QUICK_WEIGHTS: Path = REPO_ROOT / "checkpoints" / "quick_cpu.pt"
QUICK_RUN_DIR: Path = REPO_ROOT / "runs" / "quick_cpu"
#: the exact command that made :data:`QUICK_WEIGHTS` (run from the repository root)
QUICK_COMMAND = ("python -m ftp_pose train --config configs/quick_cpu.yaml --out runs/quick_cpu "
                 "--export-weights checkpoints/quick_cpu.pt")

log = logging.getLogger(__name__)


def quick_config(run_dir: str | Path = QUICK_RUN_DIR, overrides: list[str] = ()):
    """``configs/quick_cpu.yaml`` with its relative paths anchored at the repository root."""
    from ftp_pose.engine.config import load_config

    cfg = load_config(QUICK_CONFIG, list(overrides))
    d = cfg.data

    def anchor(p: str) -> str:
        return p if p == "gt" or Path(p).is_absolute() else str(REPO_ROOT / p)
    d.train_ann, d.train_images, d.val_ann, d.val_images = map(anchor, (d.train_ann, d.train_images,
                                                                        d.val_ann, d.val_images))
    d.train_boxes, d.val_boxes = anchor(d.train_boxes), anchor(d.val_boxes)
    if d.synthetic is not None:
        d.synthetic.out_dir = anchor(d.synthetic.out_dir)
    cfg.out_dir = str(Path(run_dir).resolve())
    return cfg


def _loads(path: Path) -> bool:
    from ftp_pose.engine.checkpoint import model_from_checkpoint

    try:
        model_from_checkpoint(path)
        return True
    except Exception as e:  # noqa: BLE001 - any failure means: do not use this file
        log.warning("quick checkpoint %s does not load (%s); not using it", path, e)
        return False


def quick_checkpoint(train_if_missing: bool = True, retrain: bool = False,
                     run_dir: str | Path = QUICK_RUN_DIR, shipped: bool = True) -> Path:
    """Path of a complete quick CPU checkpoint; trains one only when none is usable.

    Order: the shipped ``checkpoints/quick_cpu.pt`` (``shipped=True``), the finished run in
    ``run_dir``, else training into ``run_dir`` (resuming a partial run there). A partial run's
    ``best.pt`` is never returned. ``train_if_missing=False`` raises MissingFileError (a FileNotFoundError) instead of
    training; ``retrain=True`` always trains afresh into ``run_dir`` (the quick-training test does,
    into a temporary folder).
    """
    from ftp_pose.engine.checkpoint import completed_checkpoint

    run_dir = Path(run_dir)
    if not retrain:
        if shipped and QUICK_WEIGHTS.is_file() and _loads(QUICK_WEIGHTS):
            return QUICK_WEIGHTS
        done = completed_checkpoint(run_dir)
        if done is not None and _loads(done):
            return done
        if not train_if_missing:
            raise MissingFileError(f"no complete quick checkpoint ({QUICK_WEIGHTS} or {run_dir}/best.pt "
                                    f"with complete.json); make one with `{QUICK_COMMAND}`")
    from ftp_pose.engine.train import train

    cfg = quick_config(run_dir)
    resume = not retrain and (run_dir / "last.pt").is_file()
    try:
        train(cfg, resume=resume or None)
    except (ValueError, RuntimeError, KeyError) as e:
        if not resume:
            raise
        log.warning("cannot resume the partial quick run in %s (%s); training afresh", run_dir, e)
        train(cfg)
    done = completed_checkpoint(run_dir)
    if done is None:
        raise RuntimeError(f"quick training in {run_dir} ended without marking the run complete")
    return done
