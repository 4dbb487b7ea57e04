"""The FTP-Pose network: shapes, kept-token counts, parameter budgets, gradients, a few training steps."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ftp_pose.models import build_model, heatmap_loss, make_config

TINY = dict(backbone="tiny", depth=1, lrb_depth=1, refine_depth=1)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", ["baseline", "multigrained", "ftp_pose"])
def test_output_shape_and_info(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, **TINY).eval()
    assert model.config.input_size == (256, 192) and model.config.heatmap_size == (64, 48)
    clips = torch.randn(2, 3, 3, 256, 192)
    with torch.no_grad():
        out = model(clips)
        out2, info = model(clips, return_info=True)
    assert out.shape == (2, 17, 64, 48) and torch.isfinite(out).all()
    torch.testing.assert_close(out, out2)
    assert info["tokens"].shape == (2, 3, 192, 192)
    for key in ("rho_l", "delta_l", "score_l"):
        assert info[key].shape == (2, 576)
    if name == "baseline":
        assert info["kept_index_l"].shape == (2, 576) and "kept_index_h" not in info
    else:
        for key in ("rho_h", "delta_h", "score_h"):
            assert info[key].shape == (2, 3072) and torch.isfinite(info[key]).all()
        m_h = math.ceil(3072 / model.config.eps_h)
        assert info["kept_index_h"].shape == (2, m_h)
        assert int(info["kept_index_h"].max()) < 3072


@pytest.mark.parametrize("eps_h,eps_l", [(3, 10), (10, 3), (6, 1), (1, 6)])
def test_kept_counts_per_eps(eps_h: float, eps_l: float) -> None:
    model = build_model("ftp_pose", eps_h=eps_h, eps_l=eps_l, **TINY).eval()
    with torch.no_grad():
        _, info = model(torch.randn(1, 3, 3, 256, 192), return_info=True)
    assert info["kept_index_h"].shape == (1, math.ceil(3072 / eps_h))
    assert info["kept_index_l"].shape == (1, math.ceil(576 / eps_l))
    for idx in (info["kept_index_h"][0], info["kept_index_l"][0]):
        assert torch.all(idx[1:] > idx[:-1])  # unique, ascending


def test_base_parameter_counts_in_table_ii_range() -> None:
    counts = {n: n_params(build_model(n, backbone="base")) / 1e6 for n in ("baseline", "multigrained", "ftp_pose")}
    assert 70.0 <= counts["baseline"] <= 74.0, counts  # paper: 72M
    assert 76.0 <= counts["multigrained"] <= 80.0, counts  # paper: 78M
    assert counts["ftp_pose"] == counts["multigrained"]  # pruning adds no parameters


def test_pruning_adds_no_parameters() -> None:
    ref = n_params(build_model("multigrained", **TINY))
    for eps in (3, 6, 10):
        assert n_params(build_model("ftp_pose", eps_h=eps, eps_l=eps, **TINY)) == ref


def test_config_overrides_and_errors() -> None:
    cfg = make_config("ftp_pose", backbone="tiny", depth=2, k=3, tau=10.0)
    assert (cfg.depth, cfg.k, cfg.tau, cfg.embed_dim) == (2, 3, 10.0, 192)
    assert build_model("ftp_pose", **TINY).config.eps_h == 6.0
    with pytest.raises(ValueError, match="unknown model variant"):
        build_model("nope")
    with pytest.raises(ValueError, match="unknown model override"):
        build_model("ftp_pose", backbone="tiny", widht=3)
    with pytest.raises(ValueError, match="baseline has no pruning"):
        build_model("baseline", eps_l=6, **{k: v for k, v in TINY.items() if k != "backbone"})
    model = build_model("ftp_pose", **TINY)
    with pytest.raises(ValueError, match=r"B x 3 x 3 x 256 x 192"):
        model(torch.randn(2, 3, 256, 192))


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = build_model("ftp_pose", **TINY)
    out = model(torch.randn(2, 3, 3, 256, 192))
    out.pow(2).mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, no_grad


def _real_clips(root: Path, n: int = 2, size: tuple[int, int] = (256, 192)) -> tuple[torch.Tensor, ...]:
    """Crops of real PoseTrack people (cv2 only): clips ``n x 3 x 3 x H x W``, Gaussian targets at H/4."""
    ann = json.loads((root / "annotations" / "test_posetrack18_val.json").read_text())
    images = {im["id"]: im for im in ann["images"]}
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    clips, targets, weights = [], [], []
    hh, ww = size
    ys, xs = np.mgrid[0:hh // 4, 0:ww // 4]
    for a in [a for a in ann["annotations"] if a["num_keypoints"] >= 8][:n]:
        img = cv2.cvtColor(cv2.imread(str(root / images[a["image_id"]]["file_name"])), cv2.COLOR_BGR2RGB)
        x, y, w, h = a["bbox"]
        cx, cy, s = x + w / 2, y + h / 2, 1.25 * max(h, w * 4 / 3)
        src = np.float32([[cx - s * 3 / 8, cy - s / 2], [cx + s * 3 / 8, cy - s / 2], [cx - s * 3 / 8, cy + s / 2]])
        aff = cv2.getAffineTransform(src, np.float32([[0, 0], [ww, 0], [0, hh]]))
        crop = (cv2.warpAffine(img, aff, (ww, hh)) / 255.0 - mean) / std
        frame = torch.from_numpy(crop.transpose(2, 0, 1)).float()
        clips.append(torch.stack([frame] * 3))
        kp = np.array(a["keypoints"], dtype=np.float64).reshape(17, 3)
        xy = (np.c_[kp[:, :2], np.ones(17)] @ aff.T) / 4.0
        targets.append(np.exp(-((xs[None] - xy[:, 0, None, None]) ** 2 + (ys[None] - xy[:, 1, None, None]) ** 2) / 8))
        weights.append(kp[:, 2] > 0)
    return (torch.stack(clips), torch.tensor(np.array(targets)).float(), torch.tensor(np.array(weights)).float())


def test_a_few_steps_reduce_the_loss(posetrack18_root: Path) -> None:
    torch.manual_seed(0)
    clips, target, weight = _real_clips(posetrack18_root, size=(128, 96))  # small crops: fast on a CPU
    model = build_model("ftp_pose", img_size=(128, 96), **TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = heatmap_loss(model(clips), target, weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_set_pruning_keeps_config_and_modules_in_sync() -> None:
    torch.manual_seed(0)
    model = build_model("ftp_pose", **TINY).eval()
    clips = torch.randn(1, 3, 3, 256, 192)
    with torch.no_grad():
        _, before = model(clips, return_info=True)
    assert model.set_pruning(eps_h=3, eps_l=10, k=7, tau=2.0 * model.config.embed_dim) is model
    cfg, mg = model.config, model.mgfe
    assert (cfg.eps_h, cfg.eps_l, cfg.k, cfg.tau) == (3.0, 10.0, 7, 2.0 * cfg.embed_dim)
    for module, eps in ((mg.prune_h, cfg.eps_h), (mg.prune_l, cfg.eps_l)):
        assert (module.eps, module.k, module.tau) == (eps, cfg.k, cfg.tau)
    with torch.no_grad():
        _, after = model(clips, return_info=True)
    assert before["kept_index_h"].shape[1] == math.ceil(3072 / 6) and after["kept_index_h"].shape[1] == 1024
    assert before["kept_index_l"].shape[1] == 96 and after["kept_index_l"].shape[1] == math.ceil(576 / 10)
    model.set_pruning(eps_l=6)                       # None keeps the other settings
    assert (cfg.eps_h, cfg.eps_l, cfg.k) == (3.0, 6.0, 7) and mg.prune_l.eps == 6.0
    for bad in (dict(eps_h=0.5), dict(eps_l=0), dict(k=0), dict(tau=0.0)):
        with pytest.raises(ValueError):
            model.set_pruning(**bad)
    assert (cfg.eps_h, cfg.eps_l, cfg.k) == (3.0, 6.0, 7)   # a refused call changes nothing
    base = build_model("baseline", **TINY)
    with pytest.raises(ValueError, match="baseline"):
        base.set_pruning(eps_l=2)
    base.set_pruning(k=3)
    assert base.config.k == 3 and base.mgfe.prune_l.k == 3


def test_ftp_pose_at_eps_1_is_multigrained_with_the_same_weights() -> None:
    """Table II: (b) without pruning is (a). Same weights, same input -> the same heatmaps; at eps 6/6
    the output differs (so the comparison can fail)."""
    small = dict(backbone="quick", img_size=(64, 48), embed_dim=32, num_heads=2, depth=1, lrb_depth=1, refine_depth=1)
    torch.manual_seed(0)
    multi = build_model("multigrained", **small).eval()
    torch.manual_seed(1)  # other initial weights, replaced below
    ftp = build_model("ftp_pose", eps_h=1, eps_l=1, **small).eval()
    ftp.load_state_dict(multi.state_dict(), strict=True)
    clips = torch.randn(2, 3, 3, 64, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = multi(clips)
        got, info = ftp(clips, return_info=True)
        pruned = ftp.set_pruning(eps_h=6, eps_l=6)(clips)
    assert info["kept_index_h"].shape[1] == 16 * 12 and info["kept_index_l"].shape[1] == 3 * 4 * 3  # all kept
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(pruned, expected, rtol=1e-5, atol=1e-6)  # the tolerance above can tell pruning apart
