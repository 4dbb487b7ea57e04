"""Transformer building blocks: self-attention blocks (timm's ``Block``) and cross-attention fusion.

Both attentions run through ``F.scaled_dot_product_attention`` (timm's ``Attention`` uses it
when ``timm.layers.use_fused_attn()`` is on, the default), so flash / memory-efficient kernels
are used on GPUs.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.vision_transformer import Block

__all__ = ["Block", "make_blocks", "CrossAttention", "FusionBlock"]


def make_blocks(dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                drop_path: float = 0.0) -> nn.ModuleList:
    """``depth`` pre-norm ViT blocks (``B x N x C -> B x N x C``), ``qkv_bias=True`` as in ViT/ViTPose."""
    return nn.ModuleList(
        Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=drop_path) for _ in range(depth)
    )


class CrossAttention(nn.Module):
    """``softmax(Q K^T / sqrt(d)) V`` with learnable ``W_q, W_k, W_v`` and an output projection.

    ``forward(query B x Nq x C, context B x Nk x C) -> B x Nq x C`` (docs/method.md, "Fusion and heatmaps").
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)  # W_k and W_v stacked
        self.proj = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, nq, c = query.shape
        nk = context.shape[1]
        q = self.q(query).reshape(b, nq, self.num_heads, self.head_dim).transpose(1, 2)
        kv = self.kv(context).reshape(b, nk, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, kv[0], kv[1])
        return self.proj(x.transpose(1, 2).reshape(b, nq, c))


class FusionBlock(nn.Module):
    """Cross-attention fusion then an MLP, pre-norm with residuals.

    ``forward(query B x Nq x C, context B x Nk x C) -> B x Nq x C``: the queries are the full
    high-resolution grid, the context the kept, refined tokens ``[F_h ; F_l]``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, num_heads)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = query + self.attn(self.norm_q(query), self.norm_kv(context))
        return x + self.mlp(self.norm_mlp(x))
