"""Pose heads: token grids -> ``B x J x 64 x 48`` heatmaps."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ftp_pose.models.upsample import upsample_tokens

__all__ = ["TokenPoseHead", "SimpleUpsampleHead"]


class TokenPoseHead(nn.Module):
    """LayerNorm + 1x1 "conv" (a Linear per token) on a token grid that already has heatmap size.

    ``forward(x B x (H*W) x C) -> B x J x H x W`` (the fusion output is on the 64 x 48 grid).
    """

    def __init__(self, dim: int, num_joints: int, heatmap_size: tuple[int, int]) -> None:
        super().__init__()
        self.heatmap_size = tuple(heatmap_size)
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_joints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h, w = self.heatmap_size
        if n != h * w:
            raise ValueError(f"TokenPoseHead expects B x {h * w} x C tokens, got {tuple(x.shape)}")
        return self.fc(self.norm(x)).transpose(1, 2).reshape(b, -1, h, w)


class SimpleUpsampleHead(nn.Module):
    """ViTPose's simple decoder for the baseline: LayerNorm, bilinear x4, ReLU, 3x3 conv to J.

    ``forward(x B x (h*w) x C) -> B x J x 4h x 4w`` (16 x 12 tokens -> 64 x 48 heatmaps).
    """

    def __init__(self, dim: int, num_joints: int, grid_size: tuple[int, int], factor: int = 4) -> None:
        super().__init__()
        self.grid_size, self.factor = tuple(grid_size), factor
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv2d(dim, num_joints, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        h, w = self.grid_size
        if n != h * w:
            raise ValueError(f"SimpleUpsampleHead expects B x {h * w} x C tokens, got {tuple(x.shape)}")
        # bilinear x factor (align_corners=False; one matmul on CUDA), B x (fh*fw) x C, seen without a
        # copy as B x C x fh x fw (channels-last memory on CUDA, the F.interpolate output on the CPU)
        x = upsample_tokens(self.norm(x), self.grid_size, self.factor, "bilinear")
        x = x.reshape(b, h * self.factor, w * self.factor, c).permute(0, 3, 1, 2)
        return self.conv(F.relu(x))
