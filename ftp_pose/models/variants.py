"""Named configurations: backbone sizes x Table II variants, and :func:`build_model`.

Variants (paper Table II / III):

* ``baseline``: backbone + LRB (spatio-temporal + refinement blocks on all 576 tokens), no
  pruning, no HRB; the key frame's tokens go to ViTPose's simple head.
* ``multigrained``: + HRB and cross-attention fusion, no pruning (eps_h = eps_l = 1), Table II (a).
* ``ftp_pose``: + DPC-KNN token pruning, eps_h = eps_l = 6 by default, Table II (b); any
  ``eps_h, eps_l`` (Table III: {1, 3, 6, 10}) via the arguments.

Backbones (width / heads; block counts backbone + LRB + refinement = 6 + 2 + 2):
``tiny`` 192/3, ``small`` 384/6, ``base`` 768/12 (the paper's ViT-B), ``large`` 1024/16; and
``quick`` 96/4 with 2 + 1 + 1 blocks, the CPU-sized model of ``configs/quick_cpu.yaml`` (and of the
shipped ``checkpoints/quick_cpu.pt``), the notebooks' quick mode and ``bench --quick``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ftp_pose.models.pose_model import FTPPose, FTPPoseConfig, load_pretrained

__all__ = ["BACKBONES", "QUICK_BACKBONE", "VARIANTS", "build_model", "make_config"]

#: backbone name -> config fields
BACKBONES: dict[str, dict[str, Any]] = {
    "tiny": dict(embed_dim=192, num_heads=3, depth=6, lrb_depth=2, refine_depth=2),
    "small": dict(embed_dim=384, num_heads=6, depth=6, lrb_depth=2, refine_depth=2),
    "base": dict(embed_dim=768, num_heads=12, depth=6, lrb_depth=2, refine_depth=2),
    "large": dict(embed_dim=1024, num_heads=16, depth=6, lrb_depth=2, refine_depth=2),
    # CPU size: a few minutes of training on 2 cores (configs/quick_cpu.yaml)
    "quick": dict(embed_dim=96, num_heads=4, depth=2, lrb_depth=1, refine_depth=1),
}

#: the preset that quick CPU mode uses everywhere (config, notebooks, bench)
QUICK_BACKBONE = "quick"

#: variant name -> config fields
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": dict(use_hrb=False, eps_h=1.0, eps_l=1.0),
    "multigrained": dict(use_hrb=True, eps_h=1.0, eps_l=1.0),
    "ftp_pose": dict(use_hrb=True, eps_h=6.0, eps_l=6.0),
}

_FIELDS = {f.name for f in dataclasses.fields(FTPPoseConfig)}


def make_config(name: str = "ftp_pose", backbone: str = "base", eps_h: float | None = None,
                eps_l: float | None = None, **overrides: Any) -> FTPPoseConfig:
    """The :class:`FTPPoseConfig` that :func:`build_model` builds (same arguments)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown model variant {name!r}; choose one of {sorted(VARIANTS)}")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    bad = sorted(set(overrides) - _FIELDS)
    if bad:
        raise ValueError(f"unknown model override(s) {bad}; valid fields: {sorted(_FIELDS)}")
    fields: dict[str, Any] = {"variant": name, "backbone": backbone, **BACKBONES[backbone], **VARIANTS[name]}
    if name == "baseline" and any(e is not None and float(e) != 1.0 for e in (eps_h, eps_l)):
        raise ValueError(f"the baseline has no pruning (and no HRB); got eps_h={eps_h}, eps_l={eps_l}")
    if eps_h is not None:
        fields["eps_h"] = float(eps_h)
    if eps_l is not None:
        fields["eps_l"] = float(eps_l)
    fields.update(overrides)
    return FTPPoseConfig(**fields)


def build_model(name: str = "ftp_pose", backbone: str = "base", eps_h: float | None = None,
                eps_l: float | None = None, **overrides: Any) -> FTPPose:
    """Build a variant: ``forward(clips B x T x 3 x 256 x 192[, return_info]) -> B x 17 x 64 x 48``.

    ``overrides`` set :class:`FTPPoseConfig` fields (``embed_dim``, ``depth``, ``num_heads``,
    ``lrb_depth``, ``refine_depth``, ``k``, ``tau``, ``img_size``, ``pretrained`` ...). With
    ``pretrained`` set, those weights are loaded (:func:`load_pretrained`); the report is kept
    as ``model.pretrained_report``.
    """
    cfg = make_config(name, backbone, eps_h, eps_l, **overrides)
    model = FTPPose(cfg)
    if cfg.pretrained:
        model.pretrained_report = load_pretrained(model, cfg.pretrained)
    return model
