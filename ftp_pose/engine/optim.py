"""Optimizer and learning-rate schedule: AdamW, ViTPose layer-wise decay, warm-up + step decay."""
from __future__ import annotations

import re

import torch
from torch import nn

from ftp_pose.engine.config import OptimConfig

#: parameter names that never get weight decay (besides every 1-D tensor: biases and norms)
_NO_DECAY_NAMES = ("pos_embed", "temporal_embed", "time_embed", "cls_token", "mask_token", "relative_position")
#: Transformer block stacks in forward order (ViTPose layer decay continues through them):
#: the backbone, then the LRB's spatio-temporal blocks, then the shared refinement blocks
_STAGES = (re.compile(r"^backbone\.(?:.*\.)?blocks\.(\d+)\."), re.compile(r"^mgfe\.lrb\.blocks\.(\d+)\."),
           re.compile(r"^mgfe\.refine\.(\d+)\."))


def _stage_depths(model: nn.Module) -> list[int]:
    depths = []
    for rx in _STAGES:
        ids = {int(m.group(1)) for n, _ in model.named_parameters() if (m := rx.search(n))}
        depths.append(max(ids) + 1 if ids else 0)
    return depths


def backbone_depth(model: nn.Module) -> int:
    """Number of Transformer blocks that get layer decay (backbone + LRB + refinement blocks)."""
    return sum(_stage_depths(model))


def layer_id(name: str, depths: list[int]) -> int:
    """ViTPose layer id: 0 for the backbone stem (patch/pos embeddings), 1.. for the blocks in forward
    order (backbone blocks, LRB blocks, refinement blocks), ``sum(depths) + 1`` for everything else
    (norms after the backbone, HRB, fusion, head: the full lr)."""
    offset = 0
    for rx, d in zip(_STAGES, depths):
        m = rx.search(name)
        if m:
            return offset + int(m.group(1)) + 1
        offset += d
    if name.startswith("backbone.") and not re.search(r"(^|\.)norm\.", name[len("backbone."):]):
        return 0
    return offset + 1


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """Parameter groups with per-group ``lr_scale`` (layer decay) and weight decay (0 for 1-D/embeddings).

    Group ``lr = cfg.lr * lr_scale``; the scheduler multiplies each group's base lr, so the scale stays.
    """
    depths = _stage_depths(model)
    depth = sum(depths)
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim <= 1 or name.endswith(".bias") or any(k in name for k in _NO_DECAY_NAMES)
        lid = layer_id(name, depths) if cfg.layer_decay != 1.0 else depth + 1
        scale = cfg.layer_decay ** (depth + 1 - lid)
        key = (lid, no_decay)
        if key not in groups:
            groups[key] = {"params": [], "names": [], "lr_scale": scale, "lr": cfg.lr * scale,
                           "weight_decay": 0.0 if no_decay else cfg.weight_decay}
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    out = [groups[k] for k in sorted(groups)]
    for g in out:
        g.pop("names")
    return out


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (betas, weight decay and layer decay from ``cfg``)."""
    return torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, betas=tuple(cfg.betas),
                             weight_decay=cfg.weight_decay)


def lr_factor_at(step: int, iters_per_epoch: int, cfg: OptimConfig) -> float:
    """Multiplier of the base lr before optimizer step ``step`` (0-based global iteration).

    Linear warm-up from ``warmup_ratio`` to 1 over ``warmup_iters`` iterations, times
    ``lr_factor ** (number of lr_steps <= current epoch)``, the epoch being ``step // iters_per_epoch``.
    """
    epoch = step // max(1, iters_per_epoch)
    factor = cfg.lr_factor ** sum(1 for s in cfg.lr_steps if epoch >= s)
    if cfg.warmup_iters > 0 and step < cfg.warmup_iters:
        alpha = step / cfg.warmup_iters
        factor *= cfg.warmup_ratio + (1.0 - cfg.warmup_ratio) * alpha
    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, iters_per_epoch: int,
                    cfg: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration scheduler (call ``.step()`` after every optimizer step); state = its step count."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor_at(step, iters_per_epoch, cfg))
