"""Heatmap loss (docs/method.md, Eq. 4): visibility-weighted mean squared error."""
from __future__ import annotations

import torch

__all__ = ["heatmap_loss"]


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor,
                 joint_weights: torch.Tensor | None = None) -> torch.Tensor:
    """``L = mean_b sum_j v_bj * w_j * ||H_bj - G_bj||^2 / (J * H * W)``.

    Args:
        pred, target: heatmaps ``B x J x H x W``.
        target_weight: visibility ``v``, ``B x J`` or ``B x J x 1`` (0 = not annotated).
        joint_weights: optional per-joint weights ``w`` of shape ``J`` (e.g. DCPose's 1.2/1.5).

    Returns a scalar (float32, whatever the prediction dtype).
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"heatmap_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
                         f"must both be B x J x H x W")
    b, j, h, w = pred.shape
    v = target_weight.reshape(b, -1).float()
    if v.shape[1] != j:
        raise ValueError(f"heatmap_loss: target_weight {tuple(target_weight.shape)} must be B x J with J = {j}")
    if joint_weights is not None:
        if joint_weights.numel() != j:
            raise ValueError(f"heatmap_loss: joint_weights has {joint_weights.numel()} values, expected {j}")
        v = v * joint_weights.reshape(1, j).float().to(v.device)
    sq = (pred.float() - target.float()).pow(2).sum(dim=(2, 3))  # B x J
    return (v * sq).sum(dim=1).mean() / (j * h * w)
