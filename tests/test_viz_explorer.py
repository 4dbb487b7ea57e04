"""The pruning explorer's update logic, without a browser (a tiny random model, a synthetic clip)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ftp_pose.models import build_model
from ftp_pose.viz.explorer import Explorer, PruningExplorer


@pytest.fixture(scope="module")
def explorer() -> PruningExplorer:
    torch.manual_seed(0)
    model = build_model("ftp_pose", backbone="tiny", embed_dim=32, num_heads=2, depth=1, lrb_depth=1,
                        refine_depth=1, img_size=(64, 48))  # 4 x 3 tokens per frame, 16 x 12 HR grid
    g = torch.Generator().manual_seed(0)
    samples = {name: {"clip": torch.randn(3, 3, 64, 48, generator=g)} for name in ("a", "b")}
    return PruningExplorer(model, samples, eps_h=6, eps_l=6)


def _drawn_kept_pixels(png: bytes) -> int:
    """Pixels of the HR kept-token colour in the rendered image (the kept tokens drawn)."""
    import io

    import matplotlib.image as mpimg

    img = (mpimg.imread(io.BytesIO(png))[..., :3] * 255).round().astype(int)
    return int(((abs(img[..., 0] - 255) < 40) & (abs(img[..., 1] - 215) < 40) & (img[..., 2] < 60)).sum())


def test_changing_eps_changes_the_kept_tokens_drawn(explorer: PruningExplorer) -> None:
    r6 = explorer.update(eps_h=6, eps_l=6)
    assert (r6.num_kept_h, r6.num_tokens_h) == (32, 192) and (r6.num_kept_l, r6.num_tokens_l) == (6, 36)
    assert sum(r6.kept_l_per_frame) == 6 and r6.kept_index_h.size == 32
    r2 = explorer.update(eps_h=2)
    assert r2.num_kept_h == 96 and r2.num_kept_l == 6
    assert _drawn_kept_pixels(r2.png) > _drawn_kept_pixels(r6.png) > 0
    # the widgets follow update() and the status line shows the counts
    assert explorer.controls["eps_h"].value == 2
    assert "HRB kept 96 / 192" in explorer.status_label.value
    assert "kept: 96 high-res / 6 low-res tokens" in explorer.status_label.value
    assert r2.kept_label() == "kept: 96 high-res / 6 low-res tokens"
    assert explorer.image.value == r2.png


def test_slider_change_triggers_an_update(explorer: PruningExplorer) -> None:
    explorer.update(eps_h=6, eps_l=6, k=5, tau_scale=1.0, sample="a")
    explorer.controls["eps_l"].value = 1
    assert explorer.last.num_kept_l == 36 and explorer.last.kept_l_per_frame == [12, 12, 12]
    assert "LRB kept 36 / 36" in explorer.status_label.value


def test_k_tau_and_sample_reach_the_model(explorer: PruningExplorer) -> None:
    r = explorer.update(eps_h=6, eps_l=6, k=3, tau_scale=10.0, sample="b")
    p = explorer.model.mgfe.prune_h
    assert p.k == 3 and p.tau == pytest.approx(320.0) and explorer.model.mgfe.prune_l.k == 3
    assert r.sample == "b" and r.joints.shape == (17, 3) and np.isfinite(r.joints).all()
    assert explorer.model.config.tau == pytest.approx(320.0)   # set_pruning: config and modules together
    explorer.update(tau_scale=1.0)
    assert p.tau == pytest.approx(32.0)  # back to the default temperature, C


def test_random_toggle_compares_with_a_seeded_random_selection(explorer: PruningExplorer) -> None:
    r = explorer.update(eps_h=6, eps_l=6, k=5, tau_scale=1.0, sample="a", random=True)
    assert explorer.controls["random"].value is True
    rr = r.random
    assert rr is not None and (rr.num_kept_h, rr.num_kept_l) == (r.num_kept_h, r.num_kept_l)
    assert not np.array_equal(rr.kept_index_h, r.kept_index_h)
    assert r.coverage_h > 0 and rr.coverage_h > 0 and rr.joints.shape == (17, 3)
    again = explorer.compute(render=False)
    assert np.array_equal(again.random.kept_index_h, rr.kept_index_h)   # seeded: the same subset every time
    assert "top: DPC, bottom: random" in explorer.status_label.value and r.update_ms >= r.forward_ms
    # the DPC modules are back in place after the random run
    from ftp_pose.models.dpc import DPCPruning
    assert isinstance(explorer.model.mgfe.prune_h, DPCPruning) and isinstance(explorer.model.mgfe.prune_l, DPCPruning)
    explorer.update(random=False)
    assert explorer.last.random is None


def test_bad_settings_are_rejected(explorer: PruningExplorer) -> None:
    with pytest.raises(TypeError, match="unknown setting"):
        explorer.update(epsilon=3)
    with pytest.raises(KeyError, match="unknown sample"):
        explorer.compute(sample="nope", render=False)


def test_explorer_is_the_pruning_explorer() -> None:
    assert Explorer is PruningExplorer


def test_real_video_clips_are_three_consecutive_frames() -> None:
    from ftp_pose.notebook import VIDEO_PEOPLE, real_video_clips

    clips = real_video_clips((128, 96), key_frame=4)
    assert list(clips) == list(VIDEO_PEOPLE)
    for c in clips.values():
        assert tuple(c["clip"].shape) == (3, 3, 128, 96) and c["meta"]["frames"] == ["000003.jpg", "000004.jpg",
                                                                                    "000005.jpg"]
        assert not torch.equal(c["clip"][0], c["clip"][1])   # real neighbours, not a repeated key frame
    with pytest.raises(FileNotFoundError, match="not found"):
        real_video_clips((128, 96), key_frame=9)


def _pixels(png: bytes) -> np.ndarray:
    import io

    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png))


def test_redrawn_figure_matches_a_freshly_built_one(explorer: PruningExplorer) -> None:
    """The figure is built once and its artists are moved: what it shows after other settings must
    be what a new explorer draws for the same setting (no stale tokens, points or titles)."""
    explorer.update(eps_h=2, eps_l=3, k=3, tau_scale=10.0, sample="b", random=False)
    fig = explorer._view(False).fig
    redrawn = explorer.update(eps_h=6, eps_l=6, k=5, tau_scale=1.0, sample="a")
    assert explorer._view(False).fig is fig                      # the same figure, redrawn in place
    fresh = PruningExplorer(explorer.model, explorer.samples, build_widgets=False)
    ref = fresh.compute(eps_h=6, eps_l=6, k=5, tau_scale=1.0, sample="a", random=False)
    np.testing.assert_array_equal(_pixels(redrawn.png), _pixels(ref.png))
    # the same for the DPC-vs-random view
    explorer.update(eps_h=2, sample="b", random=True)
    redrawn = explorer.update(eps_h=6, sample="a", random=True)
    ref = fresh.compute(random=True)
    np.testing.assert_array_equal(_pixels(redrawn.png), _pixels(ref.png))
    explorer.update(random=False)


def test_forward_pass_is_cached_per_setting(explorer: PruningExplorer) -> None:
    explorer.clear_cache()
    first = explorer.update(eps_h=3, eps_l=6, k=5, tau_scale=1.0, sample="a", random=False)
    assert not first.cached and first.forward_ms > 0
    explorer.update(eps_h=4)
    again = explorer.update(eps_h=3)
    assert again.cached and again.forward_ms == 0 and "forward pass cached" in explorer.status_label.value
    np.testing.assert_array_equal(again.kept_index_h, first.kept_index_h)
    np.testing.assert_array_equal(again.joints, first.joints)
    # a cached setting still configures the model (notebooks run it directly after compute())
    assert explorer.model.mgfe.prune_h.eps == 3
    explorer.cache_size = 2
    for eps in (5, 6, 7):
        explorer.compute(eps_h=eps, render=False)
    assert len(explorer._cache) == 2
    explorer.cache_size = 32
