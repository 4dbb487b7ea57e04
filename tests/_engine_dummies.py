"""Tiny stand-ins for the engine tests: a clip dataset and a model with a ``backbone.blocks`` stack.

Sizes are small (input 32 x 24, heatmaps 8 x 6) so that a few epochs take a second on a CPU.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ftp_pose.keypoints import NUM_JOINTS

T, H, W, HH, HW = 3, 32, 24, 8, 6


class DummyClips(Dataset):
    """``n`` clips whose target heatmaps are a fixed function of the key frame; light augmentation noise
    drawn from numpy's global RNG (so the engine's per-item seeding is exercised)."""

    def __init__(self, n: int = 24, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.clips = torch.randn(n, T, 3, H, W, generator=g)
        proj = torch.randn(NUM_JOINTS, 3, generator=torch.Generator().manual_seed(99))
        pooled = nn.functional.adaptive_avg_pool2d(self.clips[:, T // 2], (HH, HW))  # n x 3 x HH x HW
        self.heatmaps = torch.sigmoid(torch.einsum("jc,nchw->njhw", proj, pooled))
        self.weights = torch.ones(n, NUM_JOINTS)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        noise = torch.from_numpy(np.random.normal(0, 0.01, size=(T, 3, H, W)).astype(np.float32))
        return {"clip": self.clips[i] + noise, "heatmaps": self.heatmaps[i], "target_weight": self.weights[i],
                "meta": {"index": i}}


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.LayerNorm(c)
        self.fc = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(self.norm(x))


class _Backbone(nn.Module):
    def __init__(self, c: int, depth: int):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, c, 4, 4)
        self.pos_embed = nn.Parameter(torch.zeros(1, (H // 4) * (W // 4), c))
        self.blocks = nn.ModuleList(_Block(c) for _ in range(depth))


class DummyPoseNet(nn.Module):
    """B x T x 3 x 32 x 24 -> B x 17 x 8 x 6, with a ViT-like ``backbone.blocks.<i>`` naming."""

    def __init__(self, c: int = 16, depth: int = 2):
        super().__init__()
        self.backbone = _Backbone(c, depth)
        self.head = nn.Conv2d(c, NUM_JOINTS, 1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.backbone.patch_embed(clips[:, clips.shape[1] // 2])  # B x C x 8 x 6
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2) + self.backbone.pos_embed
        for blk in self.backbone.blocks:
            t = blk(t)
        return self.head(t.transpose(1, 2).reshape(b, c, h, w))


def mse_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (((pred - target) ** 2).mean(dim=(2, 3)) * weight).mean()


def loss_evaluate(model, val_set, cfg, dist, out_dir) -> dict:
    """A stand-in validation: ``Mean`` = 100 x exp(-10 x val MSE) (higher is better)."""
    model.eval()
    with torch.no_grad():
        batch = [val_set[i] for i in range(len(val_set))]
        pred = model(torch.stack([b["clip"] for b in batch]))
        loss = mse_loss(pred, torch.stack([b["heatmaps"] for b in batch]), torch.stack([b["target_weight"] for b in batch]))
    return {"Head": float(loss), "Mean": 100.0 * math.exp(-10 * float(loss))}


def ddp_worker(rank: int, world: int, init_file: str, cfg_dict: dict, out: str, timeout_s: float = 240.0) -> None:
    """One rank of a gloo DDP run (started by :func:`_helpers.spawn_and_join`).

    The ranks meet through ``file://init_file`` rather than a TCP port: a port that a test picked
    free and released can be taken by another process before rank 0 binds it. ``init_distributed``
    then finds the group joined and reads the rank from the environment, as under torchrun.
    ``timeout_s`` bounds every collective, so a stuck rank raises instead of hanging for gloo's 30 min.
    """
    import datetime

    import torch.distributed as dist

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from ftp_pose.engine import distributed as D
    from ftp_pose.engine.config import config_from_dict
    from ftp_pose.engine.train import train

    dist.init_process_group("gloo", init_method=Path(init_file).resolve().as_uri(), rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    cfg = config_from_dict(cfg_dict)
    try:
        train(cfg, model=DummyPoseNet(), train_set=DummyClips(24), val_set=DummyClips(8, seed=1),
              loss_fn=mse_loss, evaluate_fn=loss_evaluate)
    finally:
        D.cleanup()
    Path(out).touch()


# ----------------------------------------------------------------------------- real-model helpers

#: build_model overrides for a CPU-sized model (the same sizes as configs/quick_cpu.yaml's)
TINY_OVERRIDES = ["model.backbone=tiny", "model.overrides.depth=1", "model.overrides.embed_dim=48",
                  "model.overrides.num_heads=2"]


def make_tiny_checkpoint(path: Path, name: str = "ftp_pose", seed: int = 0) -> Path:
    """A checkpoint of an untrained tiny model with its config, as ``train`` writes it (weights only)."""
    from ftp_pose.engine.checkpoint import save_checkpoint
    from ftp_pose.engine.quick import quick_config
    from ftp_pose.engine.builders import build_model_from_config

    cfg = quick_config(path.parent, [f"model.name={name}"])
    torch.manual_seed(seed)
    model = build_model_from_config(cfg)
    return save_checkpoint(path, {"model": model.state_dict(), "config": cfg.to_dict(), "epoch": 0,
                                  "global_step": 0})


class OracleModel(nn.Module):
    """Returns the ground-truth target heatmaps of the clips it was given (looked up by content).

    ``targets`` maps a clip's key to its ``J x h x w`` heatmaps; mirrored clips get the mirrored,
    joint-swapped targets, so flip test averages to the targets again.
    """

    def __init__(self, dataset):
        super().__init__()
        from ftp_pose.data import flip_heatmaps

        self.table: dict[bytes, torch.Tensor] = {}
        for i in range(len(dataset)):
            item = dataset[i]
            hm = item["heatmaps"]
            self.table[self.key(item["clip"])] = hm
            self.table[self.key(torch.flip(item["clip"], dims=[-1]))] = flip_heatmaps(hm[None])[0]

    @staticmethod
    def key(clip: torch.Tensor) -> bytes:
        return clip[:, :, ::7, ::5].contiguous().numpy().round(3).tobytes()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.table[self.key(c.cpu())] for c in clips])
