"""Training: ``python -m ftp_pose train --config configs/quick_cpu.yaml [--set k=v] [--resume [PATH]]``.

One loop for CPU, one GPU and ``torchrun --nproc_per_node=N -m ftp_pose train ...`` (DDP, a
DistributedSampler per rank, gloo on CPU / nccl on CUDA). Per epoch: AdamW steps with warm-up and
step decay, then (every ``eval_every`` epochs) validation AP on the val set, then ``last.pt``
(and ``best.pt`` when the mean AP improved), written atomically.

Determinism: every clip's augmentation is seeded from (seed, epoch, dataset index)
(:mod:`ftp_pose.engine.seeding`), not from a worker's RNG. The model's own RNG (drop-path) and all RNG
states are saved in every checkpoint. ``--resume`` continues a killed run exactly from its last
checkpoint (end of an epoch, or mid-epoch with ``checkpoint_every_iters``).

Run folder (``out_dir``): ``config.yaml``, ``metrics.csv``, ``curves.png``, ``last.pt``, ``best.pt``,
``val_ap.json``/``val_ap.md`` (latest validation) and ``val_predictions/`` (PoseTrack jsons).

Plateau stopping (``plateau_patience`` > 0): the run ends early once that many validations in a row
have not raised the mean AP by ``plateau_min_delta`` over the best that counted (and at least
``plateau_min_epochs`` have run); the state is saved in every checkpoint, so resuming a stopped run
trains no further.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ftp_pose.engine import distributed as D
from ftp_pose.engine.builders import (LossFn, amp_dtype, build_dataset, build_model_from_config,  # noqa: F401
                                      collate_clips, default_loss, ensure_synthetic, resolve_path)
from ftp_pose.engine.checkpoint import (export_weights, load_checkpoint, mark_complete, mark_incomplete, rng_state,
                                       save_checkpoint, set_rng_state, unwrap)
from ftp_pose.engine.config import ConfigError, TrainConfig, apply_overrides, config_from_dict, load_config, save_config
from ftp_pose.engine.inference import validate
from ftp_pose.engine.optim import build_optimizer, build_scheduler
from ftp_pose.engine.run_log import MetricsLog, ap_row
from ftp_pose.engine.seeding import EpochSampler, EpochSeededDataset, seed_everything, worker_init
from ftp_pose.errors import MissingFileError

#: evaluate_fn(model, val_set, cfg, dist, out_dir) -> AP table {"Head": .., ..., "Mean": ..} (rank 0; {} elsewhere)
EvaluateFn = Callable[[nn.Module, Dataset, TrainConfig, D.DistInfo, Path], dict]


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
    trainer = Trainer(cfg, model=model, train_set=train_set, val_set=val_set, loss_fn=loss_fn,
                      evaluate_fn=evaluate_fn, callbacks=callbacks)
    return trainer.run(resume)


class Trainer:
    """One training run in named steps: :meth:`_setup` (in the constructor), then :meth:`run`:
    :meth:`_resume`, :meth:`_open_run_dir`, and per epoch :meth:`train_one_epoch`,
    :meth:`validate_epoch` and :meth:`save`."""

    def __init__(self, cfg: TrainConfig, *, model: nn.Module | None = None, train_set: Dataset | None = None,
                 val_set: Dataset | None = None, loss_fn: LossFn | None = None,
                 evaluate_fn: EvaluateFn | None = None, callbacks: list[Callable[[dict], None]] = ()):
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self.start_epoch, self.skip_iters, self.global_step, self.best_ap = 0, 0, 0, -math.inf
        #: plateau stopping (cfg.plateau_patience): best mean AP that counted as progress, validations since
        self.plateau = {"best": -math.inf, "stale": 0, "stopped_at": None}
        self.metrics: dict = {}
        self.log: MetricsLog | None = None
        self._setup(model, train_set, val_set, loss_fn, evaluate_fn)

    # ------------------------------------------------------------------ steps

    def _setup(self, model: nn.Module | None, train_set: Dataset | None, val_set: Dataset | None,
               loss_fn: LossFn | None, evaluate_fn: EvaluateFn | None) -> None:
        """Processes, data, model, optimizer, LR schedule and grad scaler (before any resume)."""
        cfg = self.cfg
        self.dist = dist = D.init_distributed(cfg.device)
        self.device = dist.device
        self.run_dir = resolve_path(cfg.out_dir)
        seed_everything(cfg.seed + dist.rank)

        if train_set is None or (val_set is None and cfg.eval_every > 0):
            ensure_synthetic(cfg, dist)
        if train_set is None:
            train_set = build_dataset(cfg, "train")
        if val_set is None and cfg.eval_every > 0:
            val_set = build_dataset(cfg, "val")
        self.val_set = val_set
        self.model = model if model is not None else build_model_from_config(cfg)
        self.loss_fn = loss_fn or default_loss(cfg)
        self.evaluate_fn = evaluate_fn or validate

        self.model.to(self.device)
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.seeded = EpochSeededDataset(train_set, cfg.seed)
        self.sampler = DistributedSampler(self.seeded, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                          seed=cfg.seed, drop_last=False)
        n_per_rank = len(self.sampler)
        if n_per_rank < cfg.batch_size:
            raise ValueError(f"{cfg.source}: batch_size {cfg.batch_size} is larger than the {n_per_rank} "
                             f"training clips per process")
        self.iters_per_epoch = n_per_rank // cfg.batch_size  # the last incomplete batch is dropped
        self.scheduler = build_scheduler(self.optimizer, self.iters_per_epoch, cfg.optim)
        self.dtype = amp_dtype(cfg, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    def _resume(self, resume: str | Path | bool | None) -> Path | None:
        """Load the checkpoint ``resume`` names (True/"auto": ``last.pt`` if it exists); return its path."""
        if not resume:
            return None
        auto = resume is True or resume == "auto"
        path = self.run_dir / "last.pt" if auto else resolve_path(resume)  # type: ignore[arg-type]
        if not path.is_file():
            if auto:
                return None  # nothing to resume: start fresh
            raise MissingFileError(f"--resume: checkpoint not found: {path}")
        ckpt = load_checkpoint(path, map_location="cpu")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch, self.skip_iters = int(ckpt["epoch"]), int(ckpt.get("iter_in_epoch", 0))
        self.global_step, self.best_ap = int(ckpt["global_step"]), float(ckpt.get("best_ap", -math.inf))
        self.plateau = dict(ckpt.get("plateau", self.plateau))
        self.metrics = dict(ckpt.get("metrics", {}))
        rngs = ckpt["rng"]  # one state per rank of the run that wrote it
        set_rng_state(rngs[self.dist.rank % len(rngs)])
        return path

    def _wrap(self) -> nn.Module:
        """The module the steps run: DDP around the model when distributed, compiled on CUDA if asked."""
        net: nn.Module = self.model
        if self.dist.enabled:
            net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.cfg.compile and self.device.type == "cuda":
            net = torch.compile(net)
        return net

    def _open_run_dir(self, resumed: bool) -> None:
        """Rank 0: mark the run incomplete, write config.yaml, open metrics.csv (cut back to the resume point)."""
        if not self.dist.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        mark_incomplete(self.run_dir)  # best.pt is final only once every epoch has run
        save_config(self.cfg, self.run_dir / "config.yaml")
        self.log = log = MetricsLog(self.run_dir / "metrics.csv")
        if resumed:
            log.truncate(self.global_step, self.start_epoch)
        elif log.rows:
            log.rows = []  # a fresh run in a used folder starts a fresh log
            log.truncate(0, 0)

    def _loader(self) -> DataLoader:
        """One loader for the whole run (persistent workers); :attr:`epoch_sampler` carries the epoch."""
        cfg = self.cfg
        self.epoch_sampler = EpochSampler(self.sampler)
        return DataLoader(self.seeded, batch_size=cfg.batch_size, sampler=self.epoch_sampler,
                          num_workers=cfg.workers, collate_fn=collate_clips, drop_last=True,
                          worker_init_fn=worker_init, pin_memory=self.device.type == "cuda",
                          persistent_workers=cfg.workers > 0, generator=torch.Generator().manual_seed(cfg.seed))

    def train_one_epoch(self, epoch: int) -> None:
        """Optimizer steps over one epoch (from :attr:`skip_iters` on when resuming mid-epoch)."""
        cfg, dist, device = self.cfg, self.dist, self.device
        first = self.skip_iters
        self.epoch_sampler.set_epoch(epoch, first * cfg.batch_size)
        self.net.train()
        bar = _progress(self.loader, dist, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", initial=first,
                        total=self.iters_per_epoch)
        window: list[float] = []
        t_log = time.perf_counter()
        n_clips = 0
        for it, batch in enumerate(bar, start=first):
            clips = batch["clip"].to(device, non_blocking=True)
            loss_val, lr = self._step(clips, batch["heatmaps"].to(device, non_blocking=True),
                                      batch["target_weight"].to(device, non_blocking=True))
            if not math.isfinite(loss_val):
                raise FloatingPointError(f"loss became {loss_val} at step {self.global_step} (epoch {epoch + 1})")
            window.append(loss_val)
            n_clips += clips.shape[0] * dist.world_size
            if dist.is_main:
                speed = n_clips / max(1e-9, time.perf_counter() - t_log)
                bar.set_postfix(loss=f"{loss_val:.3g}", lr=f"{lr:.2g}", clips_s=f"{speed:.1f}")
                if self.global_step % cfg.log_every == 0 or it == self.iters_per_epoch - 1:
                    assert self.log is not None
                    self.log.append(kind="train", epoch=epoch + 1, iter=self.global_step, lr=lr,
                                    loss=float(np.mean(window)), clips_per_s=speed,
                                    time_s=time.perf_counter() - self.t_start)
                    window = []
            for cb in self.callbacks:
                cb({"epoch": epoch, "iter_in_epoch": it + 1, "global_step": self.global_step, "loss": loss_val})
            if cfg.checkpoint_every_iters and self.global_step % cfg.checkpoint_every_iters == 0 \
                    and it + 1 < self.iters_per_epoch:
                self.save(epoch, it + 1)
        bar.close()
        self.skip_iters = 0

    def _step(self, clips: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> tuple[float, float]:
        """One optimizer step on ``clips`` B x T x 3 x H x W; returns (loss averaged over ranks, lr used)."""
        with torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None \
                else contextlib.nullcontext():
            pred = self.net(clips)
        loss = self.loss_fn(pred.float(), target.float(), weight.float())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        lr = self.optimizer.param_groups[-1]["lr"]
        self.scheduler.step()
        self.global_step += 1
        return float(D.all_reduce_mean(loss.detach()).item()), lr

    def validate_epoch(self, epoch: int) -> bool:
        """Validate after ``epoch`` (0-based) when due; return whether ``best.pt`` should be written."""
        cfg = self.cfg
        last_epoch = epoch + 1 == cfg.optim.epochs
        if self.val_set is None or cfg.eval_every <= 0:
            return True  # no validation: best = last
        if not ((epoch + 1) % cfg.eval_every == 0 or last_epoch):
            return False
        table = self.evaluate_fn(unwrap(self.model), self.val_set, cfg, self.dist, self.run_dir)
        table = D.broadcast_object(table)
        self.metrics = {"epoch": epoch + 1, **table}
        ap = float(table.get("Mean", -math.inf))
        if self.dist.is_main:
            assert self.log is not None
            self.log.append(kind="val", epoch=epoch + 1, iter=self.global_step, **ap_row(table),
                            time_s=time.perf_counter() - self.t_start)
        if ap >= self.plateau["best"] + cfg.plateau_min_delta:
            self.plateau.update(best=ap, stale=0)
        else:
            self.plateau["stale"] += 1
        if cfg.plateau_patience and self.plateau["stale"] >= cfg.plateau_patience \
                and epoch + 1 >= cfg.plateau_min_epochs:
            self.plateau["stopped_at"] = epoch + 1
        if ap > self.best_ap:
            self.best_ap = ap
            return True
        return False

    def save(self, epoch: int, iter_in_epoch: int, name: str = "last.pt") -> Path:
        """Write ``run_dir/name`` (rank 0; every rank's RNG state is gathered into it)."""
        rngs = D.all_gather_object(rng_state())
        path = self.run_dir / name
        if self.dist.is_main:
            save_checkpoint(path, {
                "model": unwrap(self.model).state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": epoch, "iter_in_epoch": iter_in_epoch, "global_step": self.global_step,
                "best_ap": self.best_ap, "plateau": self.plateau, "rng": rngs, "config": self.cfg.to_dict(), "metrics": self.metrics,
                "world_size": self.dist.world_size})
        D.barrier()
        return path

    def run(self, resume: str | Path | bool | None = None) -> dict[str, Any]:
        """Every remaining epoch; then ``complete.json``. Returns what :func:`train` returns."""
        cfg = self.cfg
        resumed = self._resume(resume) is not None
        self.net = self._wrap()
        self._open_run_dir(resumed)
        self.loader = self._loader()
        self.t_start = time.perf_counter()
        for epoch in range(self.start_epoch, cfg.optim.epochs):
            if self.plateau["stopped_at"] is not None:
                break   # a resumed run that had already stopped on a plateau
            self.train_one_epoch(epoch)
            improved = self.validate_epoch(epoch)
            self.save(epoch + 1, 0)
            if improved:
                self.save(epoch + 1, 0, name="best.pt")
            if self.dist.is_main:
                assert self.log is not None
                self.log.plot(self.run_dir / "curves.png")
                _epoch_line(epoch + 1, cfg.optim.epochs, self.log, self.metrics, self.t_start)
            if self.plateau["stopped_at"] is not None:
                if self.dist.is_main:
                    print(f"[ftp_pose train] plateau: no +{cfg.plateau_min_delta:g} mean AP over "
                          f"{cfg.plateau_patience} validations; stopped after epoch {epoch + 1}",
                          file=sys.stderr, flush=True)
                break

        run_dir = self.run_dir
        epochs_run = self.plateau["stopped_at"] or cfg.optim.epochs
        result = {"run_dir": str(run_dir), "last": str(run_dir / "last.pt"), "best": str(run_dir / "best.pt"),
                  "best_ap": self.best_ap, "metrics": self.metrics, "epoch": epochs_run,
                  "stopped_on_plateau": self.plateau["stopped_at"] is not None,
                  "global_step": self.global_step, "time_s": time.perf_counter() - self.t_start}
        if self.dist.is_main:
            best_ap = self.best_ap if math.isfinite(self.best_ap) else None
            mark_complete(run_dir, {"epochs": epochs_run, "global_step": self.global_step,
                                    "best_ap": best_ap, "best": "best.pt"})
        D.barrier()
        return result


def _epoch_line(epoch: int, epochs: int, log: MetricsLog, metrics: dict, t_start: float) -> None:
    """One line per epoch on stderr, so that a run inside a test or a notebook shows it is alive."""
    train_rows = [r for r in log.rows if r["kind"] == "train" and int(r["epoch"]) == epoch]
    loss = f", loss {float(train_rows[-1]['loss']):.4g}" if train_rows else ""
    ap = f", val mean AP {metrics['Mean']:.1f}" if metrics.get("epoch") == epoch and "Mean" in metrics else ""
    print(f"[ftp_pose train] epoch {epoch}/{epochs}{loss}{ap}, {time.perf_counter() - t_start:.0f} s",
          file=sys.stderr, flush=True)


def _progress(loader: DataLoader, dist: D.DistInfo, **kw: Any):
    """tqdm over ``loader`` on rank 0, a silent one elsewhere."""
    from tqdm.auto import tqdm

    # disable=None: no bar where stderr is not a terminal (CI logs, tests, notebooks); the per-epoch
    # line (_epoch_line) still shows progress there
    return tqdm(loader, disable=None if dist.is_main else True, dynamic_ncols=True, leave=False, **kw)


# ----------------------------------------------------------------------------- CLI

def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config (configs/*.yaml); optional with --resume PATH")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, dotted keys (e.g. --set optim.lr=1e-3); repeatable")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                        help="continue from PATH, or from <out>/last.pt when no PATH is given")
    parser.add_argument("--out", help="run folder (overrides out_dir)")
    parser.add_argument("--export-weights", type=Path, metavar="PATH",
                        help="when the run has finished, also write best.pt's weights, config and metrics "
                             "(no optimizer state) to PATH")


def run_cli(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"out_dir={args.out}")
    # a bad config raises ConfigError / MissingFileError here, before anything runs; the CLI
    # prints it as one line (ftp_pose.cli)
    if args.config is not None:
        cfg = load_config(args.config, overrides)
    elif args.resume and args.resume != "auto":
        ckpt = load_checkpoint(args.resume)
        cfg = config_from_dict(apply_overrides(ckpt["config"], overrides, str(args.resume)), str(args.resume))
    else:
        raise ConfigError("train: --config is required (or --resume PATH to continue a run)")
    try:
        result = train(cfg, resume=args.resume)
    finally:
        D.cleanup()
    if os.environ.get("RANK", "0") == "0":
        best = f"{result['best_ap']:.2f}" if math.isfinite(result["best_ap"]) else "n/a (no validation)"
        print(f"run folder: {result['run_dir']}\nbest mean AP: {best}\n"
              f"checkpoints: {result['last']}, {result['best']}")
        if args.export_weights:
            print(f"weights: {export_weights(result['best'], args.export_weights)}")
    return 0
