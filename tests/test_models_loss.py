"""Visibility-weighted heatmap MSE."""
from __future__ import annotations

import pytest
import torch

from ftp_pose.models import heatmap_loss


def test_loss_formula_and_weights() -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 4, 8, 6, generator=g), torch.randn(2, 4, 8, 6, generator=g)
    v = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    expected = sum(v[b, j] * ((pred[b, j] - target[b, j]) ** 2).sum() for b in range(2) for j in range(4)) / (2 * 4 * 48)
    torch.testing.assert_close(heatmap_loss(pred, target, v), expected)
    torch.testing.assert_close(heatmap_loss(pred, target, v.unsqueeze(-1)), expected)
    w = torch.tensor([1.0, 1.0, 2.0, 1.0])
    assert heatmap_loss(pred, target, v, joint_weights=w) > expected
    assert heatmap_loss(pred, target, torch.zeros(2, 4)) == 0
    assert heatmap_loss(target, target, v) == 0


def test_loss_shape_errors() -> None:
    with pytest.raises(ValueError, match="B x J x H x W"):
        heatmap_loss(torch.zeros(2, 4, 8), torch.zeros(2, 4, 8), torch.ones(2, 4))
    with pytest.raises(ValueError, match="target_weight"):
        heatmap_loss(torch.zeros(2, 4, 8, 6), torch.zeros(2, 4, 8, 6), torch.ones(2, 3))
