"""A cached quick CPU checkpoint (``configs/quick_cpu.yaml``) for notebooks, demos and tests.

``quick_checkpoint()`` returns ``<repo>/runs/quick_cpu/best.pt``, training it first (a few minutes
on a 2-core CPU; synthetic videos are generated into ``<repo>/data/synth_quick``) when it is
missing or no longer loads into the current model code.
"""
from __future__ import annotations

from pathlib import Path

from ftp_pose.errors import MissingFileError
from ftp_pose.paths import REPO_ROOT

QUICK_CONFIG: Path = REPO_ROOT / "configs" / "quick_cpu.yaml"
QUICK_RUN_DIR: Path = REPO_ROOT / "runs" / "quick_cpu"


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
    from ftp_pose.engine.inference import model_from_checkpoint

    try:
        model_from_checkpoint(path)
        return True
    except Exception:  # noqa: BLE001 - any failure means: train a fresh one
        return False


def quick_checkpoint(train_if_missing: bool = True, retrain: bool = False,
                     run_dir: str | Path = QUICK_RUN_DIR) -> Path:
    """Path of the quick CPU checkpoint (``runs/quick_cpu/best.pt``), trained here if needed.

    ``train_if_missing=False`` raises FileNotFoundError instead of training; ``retrain=True``
    always trains a fresh one (the test of the quick training does).
    """
    run_dir = Path(run_dir)
    best = run_dir / "best.pt"
    if not retrain and best.is_file() and _loads(best):
        return best
    if not train_if_missing and not retrain:
        raise MissingFileError(f"no quick checkpoint at {best}; train one with "
                                f"`python -m ftp_pose train --config configs/quick_cpu.yaml`")
    from ftp_pose.engine.train import train

    for stale in ("last.pt", "best.pt", "metrics.csv"):
        (run_dir / stale).unlink(missing_ok=True)
    train(quick_config(run_dir))
    return best
