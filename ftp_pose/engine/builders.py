"""What a config builds: the datasets, the model, the loss, the autocast dtype, and batches.

Shared by training (:mod:`ftp_pose.engine.train`), inference (:mod:`ftp_pose.engine.inference`) and
checkpoint loading (:func:`ftp_pose.engine.checkpoint.model_from_checkpoint`); it imports none of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import Dataset

from ftp_pose.engine import distributed as D
from ftp_pose.engine.config import ConfigError, TrainConfig, clip_layout
from ftp_pose.errors import MissingFileError

#: loss_fn(pred B x J x h x w, target B x J x h x w, target_weight B x J) -> scalar
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def resolve_path(p: str | Path) -> Path:
    """Config paths: absolute as given, relative ones against the current directory."""
    return Path(p).expanduser() if Path(p).expanduser().is_absolute() else Path.cwd() / p


def collate_clips(batch: list[dict]) -> dict:
    """Stack ``clip`` (B x T x 3 x H x W), ``heatmaps`` (B x J x h x w), ``target_weight`` (B x J); keep metas as a list."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        vals = [b[key] for b in batch]
        if key == "meta":
            out[key] = vals
        else:
            out[key] = torch.stack([torch.as_tensor(v) for v in vals])
    return out


def ensure_synthetic(cfg: TrainConfig, dist: D.DistInfo | None = None) -> None:
    """Generate the config's synthetic videos on rank 0 when its train annotations are missing."""
    syn = cfg.data.synthetic
    if syn is None:
        return
    if (dist is None or dist.is_main) and not resolve_path(cfg.data.train_ann).is_file():
        from ftp_pose.data.synthetic import generate_synthetic_posetrack

        generate_synthetic_posetrack(resolve_path(syn.out_dir), n_videos=syn.n_videos, n_frames=syn.n_frames,
                                     seed=syn.seed, **syn.options.kwargs())
    D.barrier()
    if not resolve_path(cfg.data.train_ann).is_file():
        raise MissingFileError(f"{cfg.source}: data.train_ann not found after generating synthetic data: "
                                f"{cfg.data.train_ann} (check data.synthetic.out_dir)")


def build_dataset(cfg: TrainConfig, split: str) -> Dataset:
    """PoseTrack clip dataset of ``split`` ("train" with augmentation, or "val") from the config."""
    from ftp_pose.data import PoseTrackClipDataset

    d = cfg.data
    train = split == "train"
    ann, images, boxes = (d.train_ann, d.train_images, d.train_boxes) if train else \
        (d.val_ann, d.val_images, d.val_boxes)
    kwargs: dict[str, Any] = dict(
        boxes=boxes if boxes == "gt" else str(resolve_path(boxes)), train=train, offsets=tuple(d.offsets),
        input_size=tuple(d.input_size), heatmap_size=tuple(d.heatmap_size), sigma=d.sigma,
        box_enlarge=d.box_enlarge, det_score_thresh=d.det_score_thresh)
    if train:
        kwargs["aug"] = d.aug if d.augment else None
    ds: Dataset = PoseTrackClipDataset(str(resolve_path(ann)), str(resolve_path(images)), **kwargs)
    limit = d.max_train_items if train else d.max_val_items
    if limit is not None and limit < len(ds):  # type: ignore[arg-type]
        ds = torch.utils.data.Subset(ds, range(limit))
    return ds


def model_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """``build_model`` / ``make_config`` keyword arguments of the config's model.

    The network's input size is ``data.input_size`` and its frame count that of ``data.offsets``
    (key frame in the middle); ``model.overrides`` change the backbone preset.
    """
    m = cfg.model
    kwargs: dict[str, Any] = dict(name=m.name, backbone=m.backbone, eps_h=m.eps_h, eps_l=m.eps_l,
                                  **m.overrides.kwargs())
    kwargs["img_size"] = tuple(cfg.data.input_size)
    kwargs["num_frames"] = clip_layout(cfg).num_frames
    if m.pretrained:
        kwargs["pretrained"] = str(resolve_path(m.pretrained))
    return kwargs


def model_config(cfg: TrainConfig) -> Any:
    """The :class:`ftp_pose.models.FTPPoseConfig` that :func:`build_model_from_config` builds (no weights)."""
    from ftp_pose.models import make_config

    return make_config(**model_kwargs(cfg))


def build_model_from_config(cfg: TrainConfig) -> nn.Module:
    """``ftp_pose.models.build_model`` with the config's variant, backbone, ratios and overrides.

    Its heatmap size must equal ``data.heatmap_size``. ``model.pretrained`` (a checkpoint path)
    is loaded by build_model.
    """
    from ftp_pose.models import build_model

    kwargs = model_kwargs(cfg)
    model = build_model(**kwargs)
    hm = tuple(getattr(model.config, "heatmap_size", cfg.data.heatmap_size))
    if hm != tuple(cfg.data.heatmap_size):
        raise ConfigError(f"{cfg.source}: data.heatmap_size {tuple(cfg.data.heatmap_size)} does not match the "
                          f"model's heatmaps {hm} (input {kwargs['img_size']})")
    return model


def default_loss(cfg: TrainConfig) -> LossFn:
    """Visibility-weighted heatmap MSE (with DCPose joint weights when ``optim.joint_weights``)."""
    from ftp_pose.keypoints import JOINT_LOSS_WEIGHTS
    from ftp_pose.models import heatmap_loss

    jw = torch.tensor(JOINT_LOSS_WEIGHTS) if cfg.optim.joint_weights else None

    def loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return heatmap_loss(pred, target, weight, joint_weights=None if jw is None else jw.to(pred.device))
    return loss


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype on CUDA (None = full precision; always None on the CPU)."""
    if device.type != "cuda" or cfg.amp == "off":
        return None
    if cfg.amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if cfg.amp in ("bf16", "fp16"):
        return torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    raise ValueError(f"{cfg.source}: amp must be auto, bf16, fp16 or off, got {cfg.amp!r}")
