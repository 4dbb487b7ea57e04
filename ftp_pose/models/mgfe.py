"""Multi-Grained Feature Encoder (MGFE): a low- and a high-resolution branch with shared refinement.

Shapes for T = 3 frames, a 16 x 12 token grid and width C::

    backbone tokens            B x T x 192 x C
    LRB  LowResolutionBranch   + spatial (192) and temporal (T) position embeddings,
                               spatio-temporal blocks, joint attention over all T*192 = 576 tokens
         prune_l               DPC-KNN, keeps ceil(576 / eps_l)            -> B x M_l x C
         refine (shared)                                                   -> F_l
    HRB  HighResolutionUpsample  key frame's 192 tokens -> 16 x 12 -> Linear(C, C) -> bilinear x4
                               -> 64 x 48 = 3072 tokens + fixed 2-D sin-cos position embedding
         prune_h               DPC-KNN on the upsampled features (before the position
                               embedding is added, so that position does not dominate the
                               distances), keeps ceil(3072 / eps_h)         -> B x M_h x C
         refine (shared)       the SAME blocks as the LRB's                 -> F_h

Choices (*ours*): the HR upsampling is a learnable ``Linear(C, C)`` followed by bilinear
interpolation (``align_corners=False``); both are linear maps acting on different axes and the
bilinear weights sum to one, so projecting the 192 tokens first equals projecting the 3072
upsampled ones, 16x cheaper. The HR grid gets a fixed (parameter-free) 2-D sin-cos position
embedding so that the 16 sub-positions of a backbone cell are told apart. Kept indices are
ascending (see :mod:`ftp_pose.models.dpc`): ``kept_index_l`` indexes ``frame * 192 + row * 12
+ col``, ``kept_index_h`` indexes ``row * 48 + col`` of the 64 x 48 grid.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from timm.layers import trunc_normal_

from ftp_pose.models.blocks import make_blocks
from ftp_pose.models.dpc import DPCPruning
from ftp_pose.models.upsample import MODES, upsample_tokens

__all__ = ["sincos_pos_embed_2d", "LowResolutionBranch", "HighResolutionUpsample", "MultiGrainedEncoder"]


def sincos_pos_embed_2d(dim: int, rows: int, cols: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (MAE style), ``(rows * cols) x dim``, row-major."""
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs dim divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (np.arange(quarter, dtype=np.float64) / quarter)
    gy, gx = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64), indexing="ij")
    out = [f(np.outer(g.reshape(-1), omega)) for g in (gy, gx) for f in (np.sin, np.cos)]
    return torch.from_numpy(np.concatenate(out, axis=1)).float()


class LowResolutionBranch(nn.Module):
    """Spatio-temporal blocks: ``B x T x N x C -> B x (T*N) x C`` with position embeddings."""

    def __init__(self, dim: int, num_frames: int, num_tokens: int, depth: int, num_heads: int,
                 mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, num_tokens, dim))
        self.temporal_embed = nn.Parameter(torch.zeros(1, num_frames, 1, dim))
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.temporal_embed, std=0.02)
        self.blocks = make_blocks(dim, depth, num_heads, mlp_ratio, drop_path)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t, n, c = tokens.shape
        x = (tokens + self.pos_embed + self.temporal_embed).reshape(b, t * n, c)
        for blk in self.blocks:
            x = blk(x)
        return x


class HighResolutionUpsample(nn.Module):
    """Key-frame tokens ``B x (h*w) x C`` -> ``B x (f*h * f*w) x C`` (Linear, then bilinear x f)."""

    def __init__(self, dim: int, grid_size: tuple[int, int], factor: int = 4, mode: str = "bilinear") -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"upsample mode must be 'bilinear' or 'nearest', got {mode!r}")
        self.grid_size, self.factor, self.mode = tuple(grid_size), int(factor), mode
        self.proj = nn.Linear(dim, dim)

    @property
    def out_size(self) -> tuple[int, int]:
        return self.grid_size[0] * self.factor, self.grid_size[1] * self.factor

    def interpolate(self, x: torch.Tensor) -> torch.Tensor:
        """``B x (h*w) x C -> B x (f*h * f*w) x C``, row-major (:func:`~ftp_pose.models.upsample.upsample_tokens`)."""
        return upsample_tokens(x, self.grid_size, self.factor, self.mode)



class MultiGrainedEncoder(nn.Module):
    """Both MGFE branches; ``forward`` returns a dict (see :meth:`forward`)."""

    def __init__(self, dim: int, num_heads: int, num_frames: int, grid_size: tuple[int, int],
                 lrb_depth: int, refine_depth: int, use_hrb: bool = True, mlp_ratio: float = 4.0,
                 upsample_factor: int = 4, upsample_mode: str = "bilinear", eps_h: float = 1.0,
                 eps_l: float = 1.0, k: int = 5, tau: float | None = None, dpc_normalize: bool = False,
                 dpc_chunk_size: int | None = None, drop_path: float = 0.0) -> None:
        super().__init__()
        self.num_frames, self.grid_size, self.use_hrb = num_frames, tuple(grid_size), use_hrb
        n = grid_size[0] * grid_size[1]
        self.lrb = LowResolutionBranch(dim, num_frames, n, lrb_depth, num_heads, mlp_ratio, drop_path)
        self.prune_l = DPCPruning(eps_l, k, tau, dpc_normalize, dpc_chunk_size)
        self.refine = make_blocks(dim, refine_depth, num_heads, mlp_ratio, drop_path)  # shared by both branches
        if use_hrb:
            self.hr_up = HighResolutionUpsample(dim, grid_size, upsample_factor, upsample_mode)
            rows, cols = self.hr_up.out_size
            self.register_buffer("hr_pos_embed", sincos_pos_embed_2d(dim, rows, cols).unsqueeze(0), persistent=False)
            self.prune_h = DPCPruning(eps_h, k, tau, dpc_normalize, dpc_chunk_size)

    def run_refine(self, x: torch.Tensor) -> torch.Tensor:
        """The shared refinement blocks, ``B x M x C -> B x M x C``."""
        for blk in self.refine:
            x = blk(x)
        return x

    def forward(self, tokens: torch.Tensor, return_scores: bool = False) -> dict[str, torch.Tensor]:
        """``tokens``: backbone output ``B x T x N x C``.

        Returns ``{"f_l": B x M_l x C, "kept_index_l": B x M_l,
        ["f_h": B x M_h x C, "kept_index_h": B x M_h, "hr_grid": B x 3072 x C]}`` plus
        ``rho_*, delta_*, score_*`` (``B x 576`` / ``B x 3072``) when ``return_scores``.
        """
        out: dict[str, torch.Tensor] = {}
        lr = self.lrb(tokens)
        kept_l, idx_l, scores_l = self.prune_l(lr, return_scores=return_scores)
        out.update(kept_index_l=idx_l, f_l=self.run_refine(kept_l))
        if scores_l is not None:
            out.update(rho_l=scores_l[0], delta_l=scores_l[1], score_l=scores_l[2])
        if self.use_hrb:
            low = self.hr_up.proj(tokens[:, self.num_frames // 2])    # B x 192 x C
            grid = self.hr_up.interpolate(low)                       # B x 3072 x C
            grid = grid + self.hr_pos_embed.to(grid.dtype)
            # DPC on the upsampled features (before the position embedding), computed exactly
            # from the 192 low-resolution tokens; kept tokens are gathered from the grid
            upsample = (self.grid_size, self.hr_up.factor, self.hr_up.mode)
            kept_h, idx_h, scores_h = self.prune_h(low, return_scores=return_scores, values=grid, upsample=upsample)
            out.update(hr_grid=grid, kept_index_h=idx_h, f_h=self.run_refine(kept_h))
            if scores_h is not None:
                out.update(rho_h=scores_h[0], delta_h=scores_h[1], score_h=scores_h[2])
        return out
