"""The full FTP-Pose network: ViT backbone -> MGFE (LRB + HRB, DPC pruning) -> fusion -> pose head.

``FTPPose(config).forward(clips B x T x 3 x 256 x 192) -> heatmaps B x 17 x 64 x 48``; the key
frame is ``clips[:, T // 2]``. Two heads, picked by ``config.use_hrb``:

* with the HRB (``multigrained``, ``ftp_pose``): ``FusionBlock`` (cross-attention, queries = the
  full 64 x 48 HR grid, keys/values = ``[F_h ; F_l]``, then an MLP) and ``TokenPoseHead``
  (LayerNorm + per-token Linear, i.e. a 1x1 conv) on the 64 x 48 grid;
* without it (``baseline``, paper Table II): the key frame's 192 tokens after the LRB go to
  ViTPose's simple decoder (bilinear x4, ReLU, 3x3 conv).

How the default block counts were chosen (``variants.BACKBONES``, base = ViT-B width 768, 12
heads): ``depth=6`` backbone blocks, ``lrb_depth=2`` spatio-temporal blocks, ``refine_depth=2``
shared refinement blocks, i.e. the 10 blocks of a 12-block ViT-B (7.09M parameters each) that
fit the paper's 72M baseline: 10 x 7.09M + patch/position embeddings 0.74M + head 0.12M = 71.7M.
The HRB adds ``Linear(C, C)`` (0.59M), cross-attention (2.36M) and an MLP of ratio 2 (2.36M)
and drops the simple head: 77.0M (paper: 78M). Pretrained ViT blocks are mapped in order:
ViT block i -> backbone block i (i < depth), then the LRB blocks, then the refinement blocks
(see :func:`load_pretrained`).

Cost (measured numbers live in the README's Table II section, made by ``python -m ftp_pose
bench``): pruning shrinks the refinement from 3072 + 576 tokens, with attention over the 3072 HR
tokens, to ``ceil(3072 / eps_h) + ceil(576 / eps_l)`` tokens, and the fusion keys likewise. It
can NOT make ``ftp_pose`` cheaper than ``baseline`` (the paper's +93.8 % FPS): ``ftp_pose`` runs
the same backbone and spatio-temporal blocks as the baseline, then refines 512 + 96 = 608 tokens
(eps 6/6) where the baseline refines 576, and adds the fusion on the 64 x 48 grid. Whatever the
block counts, ftp_pose >= baseline in FLOPs under the described structure; only a deliberately
expensive baseline head could change that, which we do not do.

The DPC selection of the 3072 HR tokens is computed exactly from the 192 low-resolution tokens
(:func:`ftp_pose.models.dpc.dpc_knn_scores_upsampled`; on CUDA the fused kernel of
:mod:`ftp_pose.models.dpc_triton`), never from distances between 3072 tokens of width C.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from timm.models.vision_transformer import init_weights_vit_timm

from ftp_pose.models.backbone import LoadReport, ViTBackbone, load_backbone_weights, read_vit_checkpoint
from ftp_pose.models.blocks import FusionBlock
from ftp_pose.models.heads import SimpleUpsampleHead, TokenPoseHead
from ftp_pose.models.mgfe import MultiGrainedEncoder

__all__ = ["FTPPoseConfig", "FTPPose", "load_pretrained"]

log = logging.getLogger(__name__)


@dataclass
class FTPPoseConfig:
    """Every hyper-parameter of the network (``build_model(...).config``)."""

    variant: str = "ftp_pose"
    backbone: str = "base"
    embed_dim: int = 768
    depth: int = 6                      #: backbone blocks (per frame)
    num_heads: int = 12
    mlp_ratio: float = 4.0
    lrb_depth: int = 2                  #: spatio-temporal blocks of the LRB (576 tokens, joint attention)
    refine_depth: int = 2               #: refinement blocks shared by both branches
    fusion_mlp_ratio: float = 2.0
    use_hrb: bool = True                #: False = the Table II baseline (simple head on the key frame)
    eps_h: float = 6.0                  #: HRB pruning ratio (keeps ceil(3072 / eps_h))
    eps_l: float = 6.0                  #: LRB pruning ratio (keeps ceil(576 / eps_l))
    k: int = 5                          #: DPC-KNN neighbours
    tau: float | None = None            #: DPC temperature (None = C, see ftp_pose.models.dpc)
    dpc_normalize: bool = False         #: divide squared distances by C before DPC
    dpc_chunk_size: int | None = None   #: rows per distance chunk (None = automatic)
    num_frames: int = 3
    img_size: tuple[int, int] = (256, 192)
    patch_size: int = 16
    upsample_factor: int = 4
    upsample_mode: str = "bilinear"
    num_joints: int = 17
    drop_path_rate: float = 0.0
    pretrained: str | None = None       #: checkpoint path or timm model name, loaded by build_model

    def __post_init__(self) -> None:
        self.img_size = tuple(int(v) for v in self.img_size)  # type: ignore[assignment]
        h, w = self.img_size
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"img_size {self.img_size} must be divisible by patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} must be divisible by num_heads {self.num_heads}")
        if self.use_hrb and self.embed_dim % 4:
            raise ValueError(f"embed_dim {self.embed_dim} must be divisible by 4 (sin-cos HR position embedding)")
        if self.eps_h < 1 or self.eps_l < 1:
            raise ValueError(f"pruning ratios must be >= 1, got eps_h={self.eps_h}, eps_l={self.eps_l}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")

    @property
    def input_size(self) -> tuple[int, int]:
        """Crop size ``(H, W)``, 256 x 192."""
        return self.img_size

    @property
    def grid_size(self) -> tuple[int, int]:
        """Backbone token grid ``(rows, cols)``, 16 x 12."""
        return self.img_size[0] // self.patch_size, self.img_size[1] // self.patch_size

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """Heatmap ``(H, W)``, 64 x 48 (the HR grid)."""
        return self.grid_size[0] * self.upsample_factor, self.grid_size[1] * self.upsample_factor

    def to_dict(self) -> dict:
        return asdict(self)


class FTPPose(nn.Module):
    """FTP-Pose (and its Table II ablations, by config). See the module docstring."""

    def __init__(self, config: FTPPoseConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.backbone = ViTBackbone(cfg.img_size, cfg.patch_size, cfg.embed_dim, cfg.depth, cfg.num_heads,
                                    cfg.mlp_ratio, cfg.drop_path_rate)
        self.mgfe = MultiGrainedEncoder(
            cfg.embed_dim, cfg.num_heads, cfg.num_frames, cfg.grid_size, cfg.lrb_depth, cfg.refine_depth,
            use_hrb=cfg.use_hrb, mlp_ratio=cfg.mlp_ratio, upsample_factor=cfg.upsample_factor,
            upsample_mode=cfg.upsample_mode, eps_h=cfg.eps_h, eps_l=cfg.eps_l, k=cfg.k, tau=cfg.tau,
            dpc_normalize=cfg.dpc_normalize, dpc_chunk_size=cfg.dpc_chunk_size, drop_path=cfg.drop_path_rate)
        if cfg.use_hrb:
            self.fusion = FusionBlock(cfg.embed_dim, cfg.num_heads, cfg.fusion_mlp_ratio)
            self.head: nn.Module = TokenPoseHead(cfg.embed_dim, cfg.num_joints, cfg.heatmap_size)
        else:
            self.head = SimpleUpsampleHead(cfg.embed_dim, cfg.num_joints, cfg.grid_size, cfg.upsample_factor)
        for part in (self.mgfe, getattr(self, "fusion", None), self.head):
            if part is not None:  # timm's ViT init (trunc-normal 0.02 Linear, zero bias) beyond the backbone
                part.apply(init_weights_vit_timm)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.config.input_size

    @property
    def heatmap_size(self) -> tuple[int, int]:
        return self.config.heatmap_size

    def set_pruning(self, eps_h: float | None = None, eps_l: float | None = None, k: int | None = None,
                    tau: float | None = None) -> "FTPPose":
        """Change the pruning settings of ``config`` and of the DPC modules together (None = keep).

        Pruning has no parameters, so the same weights run at any ``eps_h, eps_l`` (>= 1), ``k``
        (>= 1) and ``tau`` (> 0; ``config.tau = None`` means C and cannot be set back here: pass
        the width instead). The baseline (no HRB) refines all its tokens: it refuses ``eps != 1``.
        Returns the model.
        """
        cfg = self.config
        new = dict(eps_h=cfg.eps_h if eps_h is None else float(eps_h), eps_l=cfg.eps_l if eps_l is None else float(eps_l),
                   k=cfg.k if k is None else int(k), tau=cfg.tau if tau is None else float(tau))
        if new["eps_h"] < 1 or new["eps_l"] < 1:
            raise ValueError(f"pruning ratios must be >= 1, got eps_h={new['eps_h']}, eps_l={new['eps_l']}")
        if new["k"] < 1:
            raise ValueError(f"k must be >= 1, got {new['k']}")
        if new["tau"] is not None and not new["tau"] > 0:
            raise ValueError(f"tau must be > 0, got {new['tau']}")
        if not cfg.use_hrb and (new["eps_h"] != 1 or new["eps_l"] != 1):
            raise ValueError(f"the baseline (no HRB) has no pruning: eps must be 1, got eps_h={new['eps_h']}, "
                             f"eps_l={new['eps_l']}")
        for name, value in new.items():
            setattr(cfg, name, value)
        prunes = [(self.mgfe.prune_l, cfg.eps_l)] + ([(self.mgfe.prune_h, cfg.eps_h)] if cfg.use_hrb else [])
        for module, eps in prunes:
            module.eps, module.k, module.tau = float(eps), int(cfg.k), cfg.tau
        return self

    def _check_input(self, clips: torch.Tensor) -> None:
        t, (h, w) = self.config.num_frames, self.config.img_size
        if clips.dim() != 5 or clips.shape[1] != t or clips.shape[2] != 3 or tuple(clips.shape[3:]) != (h, w):
            raise ValueError(f"FTPPose expects clips B x T x 3 x H x W = B x {t} x 3 x {h} x {w} "
                             f"(key frame in the middle), got {tuple(clips.shape)}")

    def forward(self, clips: torch.Tensor, return_info: bool = False):
        """``clips`` ``B x T x 3 x H x W`` (ImageNet-normalised) -> heatmaps ``B x J x H/4 x W/4``.

        With ``return_info=True`` returns ``(heatmaps, info)``; ``info`` holds ``tokens``
        (backbone output, ``B x T x 192 x C``), ``kept_index_l`` (``B x M_l``, into ``frame * 192 +
        row * 12 + col``), ``rho_l, delta_l, score_l`` (``B x 576``) and, with the HRB,
        ``kept_index_h`` (``B x M_h``, into ``row * 48 + col`` of the 64 x 48 grid) and
        ``rho_h, delta_h, score_h`` (``B x 3072``). Scores are computed even at eps = 1 then.
        """
        self._check_input(clips)
        b, t = clips.shape[:2]
        tokens = self.backbone(clips.flatten(0, 1))
        tokens = tokens.reshape(b, t, tokens.shape[1], tokens.shape[2])
        enc = self.mgfe(tokens, return_scores=return_info)
        if self.config.use_hrb:
            context = torch.cat([enc["f_h"], enc["f_l"]], dim=1)
            heatmaps = self.head(self.fusion(enc["hr_grid"], context))
        else:
            n = tokens.shape[2]
            key = enc["f_l"].reshape(b, t, n, -1)[:, t // 2]  # eps_l == 1: all tokens, original order
            heatmaps = self.head(key)
        if not return_info:
            return heatmaps
        keep = ("kept_index_h", "kept_index_l", "rho_h", "delta_h", "score_h", "rho_l", "delta_l", "score_l")
        info = {k: v.detach() for k, v in enc.items() if k in keep}
        info["tokens"] = tokens.detach()
        return heatmaps, info


def load_pretrained(model: FTPPose, source: str | os.PathLike, map_extra_blocks: bool = True) -> LoadReport:
    """Load ViT weights (timm / MAE / ViTPose checkpoint file, or a timm model name) into ``model``.

    ``blocks.<i>`` with ``i < depth`` go to the backbone; with ``map_extra_blocks`` the next
    ``lrb_depth`` source blocks initialise the LRB blocks and the next ``refine_depth`` the shared
    refinement blocks (so a 12-block ViT-B initialises all 10 blocks of the base model).
    Returns a :class:`LoadReport` (also logged); ``missing`` lists backbone tensors the checkpoint
    did not provide.
    """
    cfg = model.config
    sd, fmt = read_vit_checkpoint(source, cfg.grid_size)
    targets = list(model.backbone.state_dict().keys())
    key_map = {k: f"backbone.{k}" for k in targets}
    if map_extra_blocks:
        stages = [("mgfe.lrb.blocks", cfg.lrb_depth), ("mgfe.refine", cfg.refine_depth)]
        offset = cfg.depth
        for prefix, n in stages:
            for i in range(n):
                for k in list(sd):
                    head = f"blocks.{offset + i}."
                    if k.startswith(head):
                        key_map[k] = f"{prefix}.{i}.{k[len(head):]}"
            offset += n
    report = LoadReport(source=str(source), format=fmt)
    load_backbone_weights(model, sd, key_map, report)
    loaded = set(report.loaded)
    report.missing = [f"backbone.{k}" for k in targets if f"backbone.{k}" not in loaded]
    log.info("pretrained weights: %s", report.summary())
    return report
