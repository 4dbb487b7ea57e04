"""Plain ViT backbone (timm's ``VisionTransformer``) and pretrained-weight loading.

:class:`ViTBackbone` turns ``B x 3 x 256 x 192`` images into ``B x 192 x C`` tokens (a 16 x 12
grid, patch 16, no class token, final LayerNorm), exactly timm's module so that timm, MAE and
ViTPose checkpoints map onto it by name.

Checkpoint formats read by :func:`read_vit_checkpoint` (all normalised to timm key names):

* **timm**: a plain state dict (``patch_embed.proj.weight``, ``pos_embed``, ``blocks.<i>.*``,
  ``norm.*``, maybe ``cls_token`` and ``head.*``), or a timm model name (weights downloaded
  by ``timm.create_model(name, pretrained=True)``, so it needs internet).
* **MAE**: ``{"model": {...}}`` with the same encoder names plus ``decoder_*`` / ``mask_token``.
* **ViTPose / mmpose**: ``{"state_dict": {"backbone.<...>": ..., "keypoint_head.<...>": ...}}``,
  ``backbone.last_norm.*`` -> ``norm.*``. ViTPose's position embedding has a class slot that it
  *adds* to every patch position (``pos_embed[:, 1:] + pos_embed[:, :1]``); that sum is what is
  loaded. (ViTPose's patch embedding also pads by 2 pixels; timm's does not, so ViTPose weights
  see a grid shifted by 2 pixels: fine for fine-tuning, not a bit-exact ViTPose.)

A class-token slot of ``pos_embed`` is dropped (timm/MAE) and the grid is resized (bicubic,
timm's ``resample_abs_pos_embed``) to 16 x 12 when the source grid differs (e.g. 14 x 14).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

from ftp_pose.errors import MissingFileError

__all__ = ["ViTBackbone", "LoadReport", "read_vit_checkpoint", "load_backbone_weights"]

log = logging.getLogger(__name__)


class ViTBackbone(VisionTransformer):
    """timm ViT without class token or classifier: ``B x 3 x H x W -> B x (H/p * W/p) x C``."""

    def __init__(self, img_size: tuple[int, int] = (256, 192), patch_size: int = 16, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0, drop_path_rate: float = 0.0) -> None:
        super().__init__(img_size=tuple(img_size), patch_size=patch_size, num_classes=0, global_pool="",
                         embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
                         qkv_bias=True, class_token=False, drop_path_rate=drop_path_rate)

    @property
    def grid_size(self) -> tuple[int, int]:
        """Token grid ``(rows, cols)``, 16 x 12 for 256 x 192 images."""
        return tuple(self.patch_embed.grid_size)  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x 3 x H x W -> B x N x C
        return self.forward_features(x)


@dataclass
class LoadReport:
    """What a weight load did: the format read, and keys loaded / missing / unexpected / mismatched."""

    source: str
    format: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.source} ({self.format}): {len(self.loaded)} tensors loaded, {len(self.missing)} missing "
                f"{self.missing[:8]}, {len(self.unexpected)} unexpected {self.unexpected[:8]}, "
                f"{len(self.mismatched)} shape-mismatched {self.mismatched[:8]}")


def _unwrap(ckpt: object, source: str) -> dict[str, torch.Tensor]:
    if not isinstance(ckpt, dict):
        raise ValueError(f"{source}: expected a state dict or a dict with 'model'/'state_dict', got {type(ckpt)}")
    for key in ("state_dict", "model", "module"):
        if key in ckpt and isinstance(ckpt[key], dict):
            return ckpt[key]
    return ckpt  # type: ignore[return-value]


def _grid_of(n: int, target: tuple[int, int]) -> tuple[int, int] | None:
    if n == target[0] * target[1]:
        return target
    s = math.isqrt(n)
    return (s, s) if s * s == n else None


def read_vit_checkpoint(source: str | os.PathLike, grid_size: tuple[int, int] = (16, 12)
                        ) -> tuple[dict[str, torch.Tensor], str]:
    """Load a ViT checkpoint (file path or timm model name) as timm-named tensors.

    Returns ``(state_dict, format)`` with ``format`` in ``timm``, ``mae``, ``vitpose``,
    ``timm-hub``; ``pos_embed`` comes back as ``1 x (rows*cols) x C`` for ``grid_size``.
    Non-backbone keys (heads, decoders, tokens) are kept so that they can be reported.
    """
    src = str(source)
    if Path(src).is_file():
        ckpt = torch.load(src, map_location="cpu", weights_only=True)
        fmt = "timm"
        if isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict):
            fmt = "mae"
        sd = dict(_unwrap(ckpt, src))
    elif Path(src).suffix in (".pth", ".pt", ".bin", ".ckpt", ".safetensors") or os.sep in src:
        raise MissingFileError(f"pretrained checkpoint not found: {src}")
    else:
        import timm

        try:
            net = timm.create_model(src.removeprefix("timm:"), pretrained=True, num_classes=0)
        except Exception as e:  # unknown name or no internet
            raise ValueError(f"{src!r} is neither a checkpoint file nor a downloadable timm model: {e}") from e
        sd, fmt = dict(net.state_dict()), "timm-hub"

    if any(k.startswith("backbone.") for k in sd):  # mmpose / ViTPose
        fmt = "vitpose"
        sd = {k.removeprefix("backbone."): v for k, v in sd.items()}
        sd = {("norm." + k[len("last_norm."):] if k.startswith("last_norm.") else k): v for k, v in sd.items()}
    sd = {k.removeprefix("module."): v for k, v in sd.items()}

    if "pos_embed" in sd:
        pos = sd["pos_embed"]
        if pos.dim() != 3:
            raise ValueError(f"{src}: pos_embed must be 1 x N x C, got {tuple(pos.shape)}")
        n = pos.shape[1]
        grid = _grid_of(n, grid_size)
        if grid is None:  # a class-token slot in front
            grid = _grid_of(n - 1, grid_size)
            if grid is None:
                raise ValueError(f"{src}: cannot infer the token grid of pos_embed {tuple(pos.shape)}")
            pos = pos[:, 1:] + pos[:, :1] if fmt == "vitpose" else pos[:, 1:]
        if grid != tuple(grid_size):
            pos = resample_abs_pos_embed(pos, new_size=list(grid_size), old_size=list(grid), num_prefix_tokens=0)
        sd["pos_embed"] = pos
    return sd, fmt


def load_backbone_weights(module: nn.Module, sd: dict[str, torch.Tensor], key_map: dict[str, str],
                          report: LoadReport) -> LoadReport:
    """Copy ``sd[src]`` into ``module``'s tensor ``key_map[src]`` for every source key.

    Source keys not in ``key_map`` are ``unexpected``; mapped targets of the wrong shape are
    ``mismatched`` (skipped). ``report.missing`` should be filled by the caller.
    """
    own = module.state_dict()
    with torch.no_grad():
        for src_key, tensor in sd.items():
            dst = key_map.get(src_key)
            if dst is None or dst not in own:
                report.unexpected.append(src_key)
            elif own[dst].shape != tensor.shape:
                report.mismatched.append(f"{src_key}: {tuple(tensor.shape)} vs {dst}: {tuple(own[dst].shape)}")
            else:
                own[dst].copy_(tensor.to(own[dst].dtype))
                report.loaded.append(dst)
    return report
