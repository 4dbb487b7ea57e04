"""Test-time variants of a trained model for the ablation's controls and the Table III sweep.

* ``key_frame_only``: the neighbour frames are replaced by copies of the key frame (the clip
  ``B x T x 3 x H x W`` becomes T copies of frame ``T // 2``): what the model gets from context.
* ``random_pruning``: the DPC-KNN selection is replaced by a seeded random subset of the same size
  (``ftp_pose.viz.explorer.RandomSelection``; a new seed per call, so every batch gets its own
  subsets): what DPC's choice of tokens is worth at the same eps.
* ``no_pruning``: the same weights at eps 1/1 (``FTPPose.set_pruning``).
* ``eps=(h, l)``: the same weights at another pruning ratio (the Table III test-time sweep).

:func:`evaluate_variant` runs one on the val set and scores it (poseval AP, per-video AP, subsets).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ftp_pose.experiments import evalsets

__all__ = ["KeyFrameOnly", "random_pruning", "evaluate_variant", "score_predictions_all"]


class KeyFrameOnly(nn.Module):
    """Wraps a clip model: ``clips B x T x 3 x H x W`` -> ``model(T copies of the key frame)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        key = clips[:, clips.shape[1] // 2: clips.shape[1] // 2 + 1]
        return self.model(key.expand_as(clips).contiguous())


@contextlib.contextmanager
def random_pruning(model: nn.Module, seed: int = 0) -> Iterator[None]:
    """Within the block, ``model``'s pruning modules keep seeded random token subsets of DPC's size."""
    from ftp_pose.viz.explorer import RandomSelection

    class _Advancing(RandomSelection):
        def __call__(self, *args: Any, **kwargs: Any):
            out = super().__call__(*args, **kwargs)
            self.seed += 1
            return out

    mgfe = model.mgfe
    names = ["prune_l"] + (["prune_h"] if model.config.use_hrb else [])
    for i, name in enumerate(names):
        object.__setattr__(mgfe, name, _Advancing(mgfe._modules[name], seed=1000 * int(seed) + 100 * i))
    try:
        yield
    finally:
        for name in names:
            object.__delattr__(mgfe, name)   # the registered submodule shows again


def score_predictions_all(preds: list[dict], val_ann: str | Path, out_dir: Path) -> dict[str, Any]:
    """poseval AP table, per-video AP and subset AP of ground-truth-box predictions."""
    from ftp_pose.engine.scoring import ap_table, score_and_write

    table = ap_table(score_and_write(preds, val_ann, out_dir, pred_subdir="predictions", stem="result"))
    rec = evalsets.joint_records(preds, val_ann)
    return {"ap": {k: round(v, 3) for k, v in table.items()},
            "ap_per_video": {k: (None if v is None else round(v, 3)) for k, v in evalsets.per_video_ap(rec).items()},
            "subsets": {k: {"mean": None if v["mean"] is None else round(v["mean"], 3), "n": v["n"]}
                        for k, v in evalsets.subset_ap(rec).items()}}


def evaluate_variant(model: nn.Module, val_set: Any, cfg: Any, out_dir: Path, variant: str = "as_trained",
                     eps: tuple[float, float] | None = None, seed: int = 0) -> dict[str, Any]:
    """Predict the val set with ``model`` changed as ``variant`` says, score it; the model is restored.

    ``variant``: ``as_trained``, ``key_frame_only``, ``random_pruning`` or ``no_pruning``; ``eps``
    (with ``as_trained``): run at ``(eps_h, eps_l)`` instead of the trained ratios.
    """
    from ftp_pose.engine.inference import predict

    if variant not in ("as_trained", "key_frame_only", "random_pruning", "no_pruning"):
        raise ValueError(f"unknown control {variant!r}")
    device = next(model.parameters()).device
    old = (model.config.eps_h, model.config.eps_l)
    net: nn.Module = KeyFrameOnly(model) if variant == "key_frame_only" else model
    ctx = random_pruning(model, seed) if variant == "random_pruning" else contextlib.nullcontext()
    try:
        if variant == "no_pruning":
            model.set_pruning(1, 1)
        elif eps is not None:
            model.set_pruning(*eps)
        with ctx, torch.no_grad():
            preds = predict(net, val_set, batch_size=cfg.val_batch_size or cfg.batch_size, flip_test=cfg.flip_test,
                            device=device, progress=False)
    finally:
        if model.config.use_hrb:
            model.set_pruning(*old)
    return score_predictions_all(preds, cfg.data.val_ann, out_dir)
