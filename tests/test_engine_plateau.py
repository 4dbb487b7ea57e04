"""Plateau stopping (``plateau_patience`` / ``plateau_min_delta``): where it stops, and that it survives resume."""
from __future__ import annotations

from pathlib import Path

import torch

from _engine_dummies import DummyClips, DummyPoseNet, mse_loss
from ftp_pose.engine.checkpoint import load_checkpoint
from ftp_pose.engine.config import load_config
from ftp_pose.engine.train import train

# scripted validation mean AP per validation: progress (>= +0.5 over the best so far) at validations 1, 2
# and 4; validations 5, 6, 7 add < 0.5 each, so with patience 3 the run stops at the 7th validation
SCRIPT = [10.0, 12.0, 12.3, 12.6, 12.9, 13.0, 13.05, 20.0, 21.0, 22.0]


def _cfg(out: Path, *extra: str):
    return load_config(None, [f"out_dir={out}", "batch_size=4", "workers=0", "optim.epochs=10",
                              "optim.warmup_iters=2", "optim.lr_steps=[9]", "log_every=100", "eval_every=1",
                              "plateau_patience=3", "plateau_min_delta=0.5", *extra])


def _scripted_evaluate(calls: list):
    def evaluate(model, val_set, cfg, dist, out_dir) -> dict:
        ap = SCRIPT[len(calls)]
        calls.append(ap)
        return {"Mean": ap}
    return evaluate


def _train(cfg, calls: list):
    torch.manual_seed(0)
    return train(cfg, resume=True, model=DummyPoseNet(), train_set=DummyClips(8), val_set=DummyClips(4, seed=1),
                 loss_fn=mse_loss, evaluate_fn=_scripted_evaluate(calls))


def test_stops_after_patience_validations_without_progress(tmp_path: Path) -> None:
    calls: list = []
    res = _train(_cfg(tmp_path / "run"), calls)
    # by hand: best-that-counted 10 -> 12 (v2) -> 12.6 (v4, +0.6); v5 12.9 (+0.3), v6 13.0 (+0.4), v7 13.05 (+0.45)
    assert len(calls) == 7 and res["epoch"] == 7 and res["stopped_on_plateau"]
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["epoch"] == 7 and ck["plateau"]["stopped_at"] == 7 and ck["plateau"]["best"] == 12.6
    # resuming a stopped run trains nothing more and validates nothing more
    again: list = []
    res2 = _train(_cfg(tmp_path / "run"), again)
    assert again == [] and res2["epoch"] == 7 and res2["metrics"]["Mean"] == 13.05


def test_off_by_default_runs_every_epoch(tmp_path: Path) -> None:
    calls: list = []
    res = _train(_cfg(tmp_path / "run", "plateau_patience=0", "optim.epochs=8"), calls)
    assert len(calls) == 8 and res["epoch"] == 8 and not res["stopped_on_plateau"]


def test_no_stop_before_min_epochs(tmp_path: Path) -> None:
    # the 7th validation would stop the run, but not before epoch 8; from there on AP rises again by >= 0.5
    calls: list = []
    res = _train(_cfg(tmp_path / "run", "plateau_min_epochs=8"), calls)
    assert len(calls) == 10 and res["epoch"] == 10 and not res["stopped_on_plateau"]
