"""The training loop: exact resume after a kill, DDP (gloo, 2 CPU processes) = 1 process, schedule."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from _engine_dummies import DummyClips, DummyPoseNet, ddp_worker, loss_evaluate, mse_loss
from ftp_pose.engine.checkpoint import completed_checkpoint, load_checkpoint
from ftp_pose.engine.config import OptimConfig, load_config
from ftp_pose.engine.optim import build_optimizer, build_scheduler, lr_factor_at, param_groups
from ftp_pose.engine.run_log import TIMING_COLUMNS
from ftp_pose.engine.train import train
from _helpers import spawn_and_join


class Killed(Exception):
    """Raised by a callback to stop a run the way a kill would (no cleanup, no final checkpoint)."""


def _cfg(out: Path, *extra: str):
    return load_config(None, [f"out_dir={out}", "batch_size=4", "workers=0", "optim.epochs=2",
                              "optim.warmup_iters=4", "optim.lr=1e-2", "optim.lr_steps=[1]", "log_every=2",
                              "optim.layer_decay=0.8", *extra])


def _run(cfg, **kw):
    torch.manual_seed(123)  # the model's init: the same in every run
    return train(cfg, model=DummyPoseNet(), train_set=DummyClips(24), val_set=DummyClips(8, seed=1),
                 loss_fn=mse_loss, evaluate_fn=loss_evaluate, **kw)


def _log(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in csv.DictReader(f)]


def _assert_same_run(a: Path, b: Path) -> None:
    wa, wb = load_checkpoint(a / "last.pt")["model"], load_checkpoint(b / "last.pt")["model"]
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"weights differ at {k}"
    assert _log(a) == _log(b)


def _kill_at(step: int):
    def cb(state: dict) -> None:
        if state["global_step"] == step:
            raise Killed
    return cb


@pytest.mark.parametrize("kill_step,extra,resume_extra", [
    (8, (), ()),
    (9, ("checkpoint_every_iters=3",), ("workers=2",)),  # mid-epoch, and resumed with 2 DataLoader workers
], ids=["epoch-end", "mid-epoch-workers"])
def test_killed_then_resumed_equals_uninterrupted(tmp_path: Path, kill_step: int, extra: tuple,
                                                  resume_extra: tuple) -> None:
    straight = _run(_cfg(tmp_path / "straight", *extra))
    assert straight["global_step"] == 12
    cfg = _cfg(tmp_path / "killed", *extra)
    with pytest.raises(Killed):
        _run(cfg, callbacks=[_kill_at(kill_step)])
    ckpt = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert ckpt["global_step"] < kill_step  # the kill lost the steps after the last checkpoint
    assert completed_checkpoint(tmp_path / "killed") is None  # a killed run's best.pt is never handed out
    resumed = _run(_cfg(tmp_path / "killed", *extra, *resume_extra), resume=True)
    assert resumed["global_step"] == 12
    _assert_same_run(tmp_path / "straight", tmp_path / "killed")
    assert (tmp_path / "killed" / "best.pt").is_file() and (tmp_path / "killed" / "curves.png").is_file()
    assert completed_checkpoint(tmp_path / "killed") == tmp_path / "killed" / "best.pt"  # finished now


def test_best_pt_holds_the_best_epochs_weights(tmp_path: Path) -> None:
    """Scripted validation: mean AP 50, 70, 60 after epochs 1, 2, 3; best.pt must be epoch 2's."""
    scripted, evaluated = [50.0, 70.0, 60.0], []

    def scripted_evaluate(model, val_set, cfg, dist, out_dir) -> dict:
        evaluated.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return {"Head": 0.0, "Mean": scripted[len(evaluated) - 1]}

    torch.manual_seed(123)
    result = train(_cfg(tmp_path, "optim.epochs=3", "eval_every=1"), model=DummyPoseNet(), train_set=DummyClips(24),
                   val_set=DummyClips(8, seed=1), loss_fn=mse_loss, evaluate_fn=scripted_evaluate)
    assert len(evaluated) == 3 and result["best_ap"] == 70.0
    best, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    assert best["epoch"] == 2 and best["best_ap"] == 70.0 and best["metrics"]["Mean"] == 70.0
    assert last["epoch"] == 3 and last["metrics"]["Mean"] == 60.0
    for k, w in evaluated[1].items():  # the weights that scored 70, not the later (worse) ones
        assert torch.equal(best["model"][k], w), f"best.pt differs from epoch 2's weights at {k}"
    assert any(not torch.equal(best["model"][k], w) for k, w in evaluated[2].items())  # the epochs did differ
    assert completed_checkpoint(tmp_path) == tmp_path / "best.pt"


def test_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    _run(_cfg(tmp_path, "optim.epochs=1"))
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config", "epoch", "global_step"} <= set(ckpt)
    assert ckpt["config"]["batch_size"] == 4 and ckpt["epoch"] == 1


def test_ddp_two_processes_match_one(tmp_path: Path) -> None:
    """Global batch 4: 1 process x 4 clips vs 2 gloo processes x 2 clips.

    Not bitwise: DDP averages the two ranks' gradients (sum of 2 half-batch means / 2) while one
    process takes the mean over 4 clips in one reduction, so float32 rounding differs in the last
    bits and grows a little over the steps; hence allclose.
    """
    base = ["workers=0", "optim.epochs=2", "optim.warmup_iters=2", "optim.lr=1e-2", "optim.lr_steps=[1]",
            "log_every=1", "seed=3"]
    one = load_config(None, [f"out_dir={tmp_path / 'one'}", "batch_size=4", *base])
    two = load_config(None, [f"out_dir={tmp_path / 'two'}", "batch_size=2", *base])
    torch.manual_seed(123)
    train(one, model=DummyPoseNet(), train_set=DummyClips(24), val_set=DummyClips(8, seed=1),
          loss_fn=mse_loss, evaluate_fn=loss_evaluate)
    # every rank builds DummyPoseNet after torch.manual_seed(seed + rank) inside train(); DDP
    # broadcasts rank 0's weights, so give rank 0 the same init as the single process
    torch.manual_seed(123)
    init = DummyPoseNet().state_dict()
    torch.save(init, tmp_path / "init.pt")
    # about 30 s on an idle 2-core machine; the deadline leaves room for a loaded CI runner
    spawn_and_join(_ddp_entry, (2, str(tmp_path / "rendezvous"), two.to_dict(), str(tmp_path / "init.pt"),
                                str(tmp_path / "ok")), nprocs=2, deadline_s=420, what="DDP with 2 gloo processes")
    assert (tmp_path / "ok").is_file()  # train() returned (spawn_and_join: every rank exited with 0)
    a, b = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    assert a["global_step"] == b["global_step"] == 12
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-5, msg=f"weights differ at {k}")
    la, lb = _log(tmp_path / "one"), _log(tmp_path / "two")
    assert [r["iter"] for r in la] == [r["iter"] for r in lb]
    for ra, rb in zip(la, lb):
        if ra["loss"]:
            assert float(ra["loss"]) == pytest.approx(float(rb["loss"]), rel=1e-4)


def _ddp_entry(rank: int, world: int, init_file: str, cfg_dict: dict, init: str, out: str) -> None:
    import _engine_dummies

    state = torch.load(init, weights_only=True)
    orig = _engine_dummies.DummyPoseNet

    class Seeded(orig):  # the same initial weights on every rank
        def __init__(self):
            super().__init__()
            self.load_state_dict(state)
    _engine_dummies.DummyPoseNet = Seeded
    ddp_worker(rank, world, init_file, cfg_dict, out)


def test_lr_schedule_warmup_then_step() -> None:
    cfg = OptimConfig(lr=1.0, warmup_iters=10, warmup_ratio=0.0, lr_steps=(3,), lr_factor=0.1)
    per_epoch = 5
    assert lr_factor_at(0, per_epoch, cfg) == 0.0
    assert lr_factor_at(5, per_epoch, cfg) == pytest.approx(0.5)
    assert lr_factor_at(10, per_epoch, cfg) == 1.0
    assert lr_factor_at(14, per_epoch, cfg) == 1.0       # epoch 2
    assert lr_factor_at(15, per_epoch, cfg) == pytest.approx(0.1)  # epoch 3: x0.1
    model = DummyPoseNet()
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, per_epoch, cfg)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[-1]["lr"])
        opt.step()
        sched.step()
    assert lrs[:11] == pytest.approx([i / 10 for i in range(11)])
    assert lrs[15:] == pytest.approx([0.1] * 5)


def test_layer_decay_and_no_decay_groups() -> None:
    model = DummyPoseNet(depth=2)
    groups = param_groups(model, OptimConfig(lr=1.0, layer_decay=0.5, weight_decay=0.1))
    scale_of = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for g in groups:
        for p in g["params"]:
            scale_of[names[id(p)]] = (g["lr_scale"], g["weight_decay"])
    assert scale_of["head.weight"] == (1.0, 0.1)
    assert scale_of["backbone.blocks.1.fc.weight"] == (0.5, 0.1)
    assert scale_of["backbone.blocks.0.fc.weight"] == (0.25, 0.1)
    assert scale_of["backbone.patch_embed.weight"] == (0.125, 0.1)
    assert scale_of["backbone.pos_embed"] == (0.125, 0.0)
    assert scale_of["backbone.blocks.0.norm.weight"][1] == 0.0
