"""Training: ``python -m ftp_pose train --config configs/quick_cpu.yaml [--set k=v] [--resume [PATH]]``.

One loop for CPU, one GPU and ``torchrun --nproc_per_node=N -m ftp_pose train ...`` (DDP, a
DistributedSampler per rank, gloo on CPU / nccl on CUDA). Per epoch: AdamW steps with warm-up and
step decay, then (every ``eval_every`` epochs) validation AP on the val set, then ``last.pt``
(and ``best.pt`` when the mean AP improved), written atomically.

Determinism: every clip's augmentation is seeded from (seed, epoch, dataset index), not from a
worker's RNG, so the data of a step is the same for any number of workers or ranks, and a resumed
run sees exactly the data an uninterrupted one would. The model's own RNG (drop-path) and all RNG
states are saved in every checkpoint. ``--resume`` continues a killed run exactly from its last
checkpoint (end of an epoch, or mid-epoch with ``checkpoint_every_iters``).

Run folder (``out_dir``): ``config.yaml``, ``metrics.csv``, ``curves.png``, ``last.pt``, ``best.pt``,
``val_ap.json``/``val_ap.md`` (latest validation) and ``val_predictions/`` (PoseTrack jsons).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ftp_pose.engine import distributed as D
from ftp_pose.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, unwrap
from ftp_pose.engine.config import TrainConfig, config_from_dict, load_config, save_config
from ftp_pose.engine.optim import build_optimizer, build_scheduler
from ftp_pose.engine.run_log import MetricsLog, ap_row
from ftp_pose.errors import MissingFileError

#: evaluate_fn(model, val_set, cfg, dist, out_dir) -> AP table {"Head": .., ..., "Mean": ..} (rank 0; {} elsewhere)
EvaluateFn = Callable[[nn.Module, Dataset, TrainConfig, D.DistInfo, Path], dict]
#: loss_fn(pred B x J x h x w, target B x J x h x w, target_weight B x J) -> scalar
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- seeding

def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy and torch (cpu and cuda)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for dataset item ``index`` in ``epoch`` (independent of workers and ranks)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class EpochSeededDataset(Dataset):
    """Wraps a dataset so that item ``i`` of epoch ``e`` is drawn with RNGs seeded by (seed, e, i).

    Indexed with ``(epoch, i)`` pairs (what :class:`EpochSampler` yields), so persistent
    DataLoader workers need no state. ``random``, ``numpy.random`` and torch's CPU generator are
    seeded around each ``__getitem__`` and restored afterwards: the caller's RNG streams are untouched.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        s = item_seed(self.seed, epoch, index)
        py, npy = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(s)
            np.random.seed(s)
            torch.default_generator.manual_seed(s)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py)
                np.random.set_state(npy)


class EpochSampler(Sampler[tuple[int, int]]):
    """``(epoch, index)`` pairs of a DistributedSampler's epoch order, after the first ``skip``
    (mid-epoch resume). Call :meth:`set_epoch` before each epoch."""

    def __init__(self, base: DistributedSampler):
        self.base, self.epoch, self.skip = base, 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.base.set_epoch(epoch)
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        return iter([(self.epoch, i) for i in list(self.base)[self.skip:]])

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


def _worker_init(worker_id: int) -> None:
    """Seed numpy / random in a DataLoader worker from torch's per-worker seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


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


# ----------------------------------------------------------------------------- building blocks

def resolve_path(p: str | Path) -> Path:
    """Config paths: absolute as given, relative ones against the current directory."""
    return Path(p).expanduser() if Path(p).expanduser().is_absolute() else Path.cwd() / p


def ensure_synthetic(cfg: TrainConfig, dist: D.DistInfo | None = None) -> None:
    """Generate the config's synthetic videos on rank 0 when its train annotations are missing."""
    syn = cfg.data.synthetic
    if syn is None:
        return
    if (dist is None or dist.is_main) and not resolve_path(cfg.data.train_ann).is_file():
        from ftp_pose.data.synthetic import generate_synthetic_posetrack

        generate_synthetic_posetrack(resolve_path(syn.out_dir), n_videos=syn.n_videos, n_frames=syn.n_frames,
                                     seed=syn.seed, **syn.options)
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
        from ftp_pose.data import AugmentConfig

        kwargs["aug"] = AugmentConfig(**d.aug) if d.augment else None
    ds: Dataset = PoseTrackClipDataset(str(resolve_path(ann)), str(resolve_path(images)), **kwargs)
    limit = d.max_train_items if train else d.max_val_items
    if limit is not None and limit < len(ds):  # type: ignore[arg-type]
        ds = torch.utils.data.Subset(ds, range(limit))
    return ds


def build_model_from_config(cfg: TrainConfig) -> nn.Module:
    """``ftp_pose.models.build_model`` with the config's variant, backbone, ratios and overrides.

    The model's input size is ``data.input_size`` (unless ``model.overrides.img_size`` says
    otherwise); its heatmap size must equal ``data.heatmap_size``. ``model.pretrained`` (a
    checkpoint path) is loaded by build_model.
    """
    from ftp_pose.engine.config import ConfigError
    from ftp_pose.models import build_model

    m = cfg.model
    kwargs = dict(m.overrides)
    kwargs.setdefault("img_size", tuple(cfg.data.input_size))
    if m.pretrained:
        kwargs["pretrained"] = str(resolve_path(m.pretrained))
    model = build_model(m.name, backbone=m.backbone, eps_h=m.eps_h, eps_l=m.eps_l, **kwargs)
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


# ----------------------------------------------------------------------------- the loop

def train(cfg: TrainConfig, *, resume: str | Path | bool | None = None, model: nn.Module | None = None,
          train_set: Dataset | None = None, val_set: Dataset | None = None,
          loss_fn: LossFn | None = None, evaluate_fn: EvaluateFn | None = None,
          callbacks: list[Callable[[dict], None]] = ()) -> dict[str, Any]:
    """Train per ``cfg``; return ``{"run_dir", "last", "best", "best_ap", "metrics", "epoch", "global_step"}``.

    ``resume``: True -> ``<out_dir>/last.pt`` (if it exists), or a checkpoint path.
    ``model``/``train_set``/``val_set``/``loss_fn``/``evaluate_fn`` replace the ones built from the
    config (tests use tiny stand-ins). ``callbacks`` are called after every optimizer step with
    ``{"epoch", "iter_in_epoch", "global_step", "loss"}``.
    """
    dist = D.init_distributed(cfg.device)
    device = dist.device
    run_dir = resolve_path(cfg.out_dir)
    seed_everything(cfg.seed + dist.rank)

    if train_set is None or (val_set is None and cfg.eval_every > 0):
        ensure_synthetic(cfg, dist)
    if train_set is None:
        train_set = build_dataset(cfg, "train")
    if val_set is None and cfg.eval_every > 0:
        val_set = build_dataset(cfg, "val")
    if model is None:
        model = build_model_from_config(cfg)
    loss_fn = loss_fn or default_loss(cfg)
    if evaluate_fn is None:
        from ftp_pose.engine.inference import validate as evaluate_fn  # noqa: N811

    model.to(device)
    optimizer = build_optimizer(model, cfg.optim)
    seeded = EpochSeededDataset(train_set, cfg.seed)
    sampler = DistributedSampler(seeded, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=False)
    n_per_rank = len(sampler)
    if n_per_rank < cfg.batch_size:
        raise ValueError(f"{cfg.source}: batch_size {cfg.batch_size} is larger than the {n_per_rank} "
                         f"training clips per process")
    iters_per_epoch = n_per_rank // cfg.batch_size  # the last incomplete batch is dropped
    scheduler = build_scheduler(optimizer, iters_per_epoch, cfg.optim)
    dtype = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    # ---- resume
    start_epoch, skip_iters, global_step, best_ap = 0, 0, 0, -math.inf
    ckpt_path: Path | None = None
    if resume:
        ckpt_path = run_dir / "last.pt" if resume is True or resume == "auto" else resolve_path(resume)
        if not ckpt_path.is_file():
            if resume is True or resume == "auto":
                ckpt_path = None  # nothing to resume: start fresh
            else:
                raise MissingFileError(f"--resume: checkpoint not found: {ckpt_path}")
    if ckpt_path is not None:
        ckpt = load_checkpoint(ckpt_path, map_location="cpu")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, skip_iters = int(ckpt["epoch"]), int(ckpt.get("iter_in_epoch", 0))
        global_step, best_ap = int(ckpt["global_step"]), float(ckpt.get("best_ap", -math.inf))
        rngs = ckpt["rng"]  # one state per rank of the run that wrote it
        set_rng_state(rngs[dist.rank % len(rngs)])

    net: nn.Module = model
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile and device.type == "cuda":
        net = torch.compile(net)

    log = None
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        log = MetricsLog(run_dir / "metrics.csv")
        if ckpt_path is not None:
            log.truncate(global_step, start_epoch)
        elif log.rows:
            log.rows = []  # a fresh run in a used folder starts a fresh log
            log.truncate(0, 0)

    def checkpoint(epoch: int, iter_in_epoch: int, metrics: dict, name: str = "last.pt") -> Path:
        rngs = D.all_gather_object(rng_state())
        path = run_dir / name
        if dist.is_main:
            save_checkpoint(path, {
                "model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "epoch": epoch, "iter_in_epoch": iter_in_epoch, "global_step": global_step,
                "best_ap": best_ap, "rng": rngs, "config": cfg.to_dict(), "metrics": metrics,
                "world_size": dist.world_size})
        D.barrier()
        return path

    # one loader for the whole run (persistent workers); the sampler carries the epoch
    epoch_sampler = EpochSampler(sampler)
    loader = DataLoader(seeded, batch_size=cfg.batch_size, sampler=epoch_sampler, num_workers=cfg.workers,
                        collate_fn=collate_clips, drop_last=True, worker_init_fn=_worker_init,
                        pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0,
                        generator=torch.Generator().manual_seed(cfg.seed))
    t_start = time.perf_counter()
    metrics: dict = {}
    for epoch in range(start_epoch, cfg.optim.epochs):
        epoch_sampler.set_epoch(epoch, skip_iters * cfg.batch_size if epoch == start_epoch else 0)
        net.train()
        first = skip_iters if epoch == start_epoch else 0
        bar = _progress(loader, dist, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", initial=first,
                        total=iters_per_epoch)
        window: list[float] = []
        t_log = time.perf_counter()
        n_clips = 0
        for it, batch in enumerate(bar, start=first):
            clips = batch["clip"].to(device, non_blocking=True)
            target = batch["heatmaps"].to(device, non_blocking=True)
            weight = batch["target_weight"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
                pred = net(clips)
            loss = loss_fn(pred.float(), target.float(), weight.float())
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.optim.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            lr = optimizer.param_groups[-1]["lr"]
            scheduler.step()
            global_step += 1
            loss_val = float(D.all_reduce_mean(loss.detach()).item())
            if not math.isfinite(loss_val):
                raise FloatingPointError(f"loss became {loss_val} at step {global_step} (epoch {epoch + 1})")
            window.append(loss_val)
            n_clips += clips.shape[0] * dist.world_size
            if dist.is_main:
                speed = n_clips / max(1e-9, time.perf_counter() - t_log)
                bar.set_postfix(loss=f"{loss_val:.3g}", lr=f"{lr:.2g}", clips_s=f"{speed:.1f}")
                if global_step % cfg.log_every == 0 or it == iters_per_epoch - 1:
                    assert log is not None
                    log.append(kind="train", epoch=epoch + 1, iter=global_step, lr=lr,
                               loss=float(np.mean(window)), clips_per_s=speed,
                               time_s=time.perf_counter() - t_start)
                    window = []
            for cb in callbacks:
                cb({"epoch": epoch, "iter_in_epoch": it + 1, "global_step": global_step, "loss": loss_val})
            if cfg.checkpoint_every_iters and global_step % cfg.checkpoint_every_iters == 0 \
                    and it + 1 < iters_per_epoch:
                checkpoint(epoch, it + 1, metrics)
        bar.close()
        skip_iters = 0

        # ---- validation
        last_epoch = epoch + 1 == cfg.optim.epochs
        improved = False
        if val_set is not None and cfg.eval_every > 0 and ((epoch + 1) % cfg.eval_every == 0 or last_epoch):
            table = evaluate_fn(unwrap(model), val_set, cfg, dist, run_dir)
            table = D.broadcast_object(table)
            metrics = {"epoch": epoch + 1, **table}
            ap = float(table.get("Mean", -math.inf))
            if dist.is_main:
                assert log is not None
                log.append(kind="val", epoch=epoch + 1, iter=global_step, **ap_row(table),
                           time_s=time.perf_counter() - t_start)
            if ap > best_ap:
                best_ap, improved = ap, True
        elif val_set is None or cfg.eval_every <= 0:
            improved = True  # no validation: best = last
        last = checkpoint(epoch + 1, 0, metrics)
        if improved:
            checkpoint(epoch + 1, 0, metrics, name="best.pt")
        if dist.is_main:
            assert log is not None
            log.plot(run_dir / "curves.png")

    result = {"run_dir": str(run_dir), "last": str(run_dir / "last.pt"), "best": str(run_dir / "best.pt"),
              "best_ap": best_ap, "metrics": metrics, "epoch": cfg.optim.epochs, "global_step": global_step,
              "time_s": time.perf_counter() - t_start}
    return result


def _progress(loader: DataLoader, dist: D.DistInfo, **kw: Any):
    """tqdm over ``loader`` on rank 0, a silent one elsewhere."""
    from tqdm.auto import tqdm

    return tqdm(loader, disable=not dist.is_main, dynamic_ncols=True, leave=False, **kw)


# ----------------------------------------------------------------------------- CLI

def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config (configs/*.yaml); optional with --resume PATH")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, dotted keys (e.g. --set optim.lr=1e-3); repeatable")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                        help="continue from PATH, or from <out>/last.pt when no PATH is given")
    parser.add_argument("--out", help="run folder (overrides out_dir)")


def run_cli(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"out_dir={args.out}")
    if args.config is not None:
        cfg = load_config(args.config, overrides)
    elif args.resume and args.resume != "auto":
        ckpt = load_checkpoint(args.resume)
        from ftp_pose.engine.config import apply_overrides

        cfg = config_from_dict(apply_overrides(ckpt["config"], overrides, str(args.resume)), str(args.resume))
    else:
        raise SystemExit("train: --config is required (or --resume PATH to continue a run)")
    try:
        result = train(cfg, resume=args.resume)
    finally:
        D.cleanup()
    if os.environ.get("RANK", "0") == "0":
        best = f"{result['best_ap']:.2f}" if math.isfinite(result["best_ap"]) else "n/a (no validation)"
        print(f"run folder: {result['run_dir']}\nbest mean AP: {best}\n"
              f"checkpoints: {result['last']}, {result['best']}")
    return 0
