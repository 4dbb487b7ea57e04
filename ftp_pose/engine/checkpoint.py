"""Checkpoints: atomic writes, RNG states as plain tensors, loading with ``weights_only=True``.

A training checkpoint (``last.pt`` / ``best.pt``) is a dict of plain types and tensors only::

    model, optimizer, scheduler, scaler   state dicts
    epoch          epochs completed when the checkpoint was written
    iter_in_epoch  batches of epoch ``epoch`` already done (0 at an epoch end; >0 mid-epoch)
    global_step    optimizer steps done
    best_ap, rng (see rng_state), config (TrainConfig.to_dict()), metrics (last validation)

so ``torch.load(path, weights_only=True)`` reads it: no pickled Python objects.
:func:`model_from_checkpoint` rebuilds the network a checkpoint's config describes and loads its weights.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ftp_pose.engine.builders import build_model_from_config
from ftp_pose.engine.config import TrainConfig, config_from_dict
from ftp_pose.errors import CheckpointError, MissingFileError, one_line
from ftp_pose.io import atomic_write


def rng_state() -> dict[str, Any]:
    """RNG states of python ``random``, numpy, torch (cpu) and every cuda device, as tensors and ints."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": torch.tensor(py_state, dtype=torch.int64),
        "python_version": int(py_version),
        "python_gauss": py_gauss,
        "numpy_keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (cuda states only where devices exist)."""
    random.setstate((state["python_version"], tuple(int(x) for x in state["python"].tolist()),
                     state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with torch.save to a temp file, then rename it over ``path``."""
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a missing or unreadable file names the path."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds; re-raised as one line with the file's name
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or not a torch file?): {one_line(e)}") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} is not an ftp_pose checkpoint (no 'model' entry)")
    return ckpt


def model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, TrainConfig]:
    """Rebuild the model a training checkpoint was made with and load its weights.

    Returns ``(model in eval mode on device, TrainConfig)``. A missing file raises MissingFileError, an
    unreadable or foreign one CheckpointError, both naming the path.
    """
    ckpt = load_checkpoint(path, map_location="cpu")
    if "config" not in ckpt:
        raise CheckpointError(f"{path}: checkpoint has no 'config' entry (not written by ftp_pose train)")
    cfg = config_from_dict(ckpt["config"], source=str(path))
    cfg.model.pretrained = None  # the checkpoint has every weight
    model = build_model_from_config(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:  # missing / unexpected keys or shape mismatches
        raise CheckpointError(f"{path}: the weights do not fit the model of its config: {one_line(e)}") from e
    return model.to(device).eval(), cfg


#: file a finished training run writes last (atomically) into its run folder
COMPLETE_MARKER = "complete.json"


def mark_incomplete(run_dir: str | Path) -> None:
    """Forget that ``run_dir`` holds a finished run (called when a run starts or resumes)."""
    (Path(run_dir) / COMPLETE_MARKER).unlink(missing_ok=True)


def mark_complete(run_dir: str | Path, info: dict[str, Any]) -> Path:
    """Record that the run in ``run_dir`` finished every epoch; its ``best.pt`` is then final."""
    from ftp_pose.io import write_json

    return write_json(Path(run_dir) / COMPLETE_MARKER, info)


def completed_checkpoint(run_dir: str | Path, name: str = "best.pt") -> Path | None:
    """``run_dir/name`` if the run that wrote it has finished (its marker exists), else None.

    A killed or still running training rewrites ``best.pt`` every epoch; such a checkpoint is
    never handed to a reader: resume the run (``train --resume``) or retrain.
    """
    run_dir = Path(run_dir)
    path = run_dir / name
    return path if (run_dir / COMPLETE_MARKER).is_file() and path.is_file() else None


def export_weights(src: str | Path, dst: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write the inference part of a training checkpoint (model weights, config, metrics) to ``dst``.

    No optimizer or RNG states: a few MB for the quick model. The run's ``metrics.csv`` beside
    ``src`` (loss and validation AP per step/epoch) travels along as ``history``, a list of row
    dicts of strings. ``dtype`` (e.g. ``torch.float16``) stores floating weights in that type;
    :func:`load_checkpoint` readers cast them back.
    """
    import csv

    ckpt = load_checkpoint(src)
    model = ckpt["model"]
    if dtype is not None:
        model = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.items()}
    keep = {k: ckpt[k] for k in ("config", "metrics", "epoch", "global_step", "best_ap") if k in ckpt}
    log = Path(src).parent / "metrics.csv"
    if log.is_file():
        with open(log, newline="") as f:
            keep["history"] = [dict(row) for row in csv.DictReader(f)]
    return save_checkpoint(dst, {"model": model, **keep})


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
