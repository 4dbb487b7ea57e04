"""The DPC backends on the CPU: the compiled loops (``cpu``, numba) against the PyTorch reference.

The reference is tested against a Python loop in ``test_models_dpc.py``; here the fast path must
keep the same tokens at the model's sizes, apart from swaps that each test names (near-ties of the
score at the cut), and exact copies must tie bitwise in both paths.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ftp_pose.models import dpc, dpc_cpu
from ftp_pose.models.upsample import interp_sparse

pytestmark = pytest.mark.skipif(not dpc_cpu.available(), reason="numba is not installed")


def _run(monkeypatch: pytest.MonkeyPatch, backend: str, fn):
    monkeypatch.setenv(dpc.BACKEND_ENV, backend)
    return fn()


def _unexplained_swaps(log_rho: torch.Tensor, delta: torch.Tensor, kept_a: torch.Tensor, kept_b: torch.Tensor,
                       num_keep: int, rtol: float = 1e-5) -> list[int]:
    """Tokens kept by one selection and not the other whose reference score is not within ``rtol``
    (in log space) of the score at the cut: such a swap cannot come from float rounding."""
    log_score = log_rho + torch.log(delta)
    cut = torch.sort(log_score, descending=True).values[num_keep - 1]
    diff = set(kept_a.tolist()) ^ set(kept_b.tolist())
    return [i for i in sorted(diff) if abs(float(log_score[i] - cut)) > rtol * max(1.0, abs(float(cut)))]


CASES = [  # (batch, grid, width): the tiny preset at 256 x 192 and the quick preset at 128 x 96
    (2, (16, 12), 192),
    (3, (8, 6), 96),
]


@pytest.mark.parametrize("b,grid,c", CASES)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_upsampled_fast_path_keeps_the_reference_tokens(monkeypatch, b, grid, c, mode) -> None:
    g = torch.Generator().manual_seed(11)
    # smooth-ish tokens (a random walk over the grid) as well as white noise
    low = torch.randn(b, grid[0] * grid[1], c, generator=g)
    low = low + 2 * low.cumsum(1) / grid[0]

    def scores():
        return dpc._dpc_upsampled_log_density_delta(low, grid, 4, mode, 5, None, False, None)

    lr_f, d_f = _run(monkeypatch, "cpu", scores)
    lr_r, d_r = _run(monkeypatch, "reference", scores)
    torch.testing.assert_close(lr_f, lr_r, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(d_f, d_r, rtol=1e-4, atol=1e-4)
    n = lr_r.shape[1]
    for eps in (2, 6, 10):
        m = dpc.num_kept(n, eps)
        idx_f, _ = dpc._select(lr_f, d_f, m)
        idx_r, _ = dpc._select(lr_r, d_r, m)
        for i in range(b):
            bad = _unexplained_swaps(lr_r[i], d_r[i], idx_r[i], idx_f[i], m)
            assert not bad, f"eps {eps}, sample {i}: tokens {bad} swapped without a near-tie"


@pytest.mark.parametrize("n,c", [(576, 192), (144, 96), (37, 5)])
def test_plain_fast_path_equals_reference(monkeypatch, n, c) -> None:
    """Plain tokens: the same distances (the reference's own Gram matrix and expression), so the
    same delta exactly and log rho up to the order of the k-term sum."""
    x = torch.randn(3, n, c, generator=torch.Generator().manual_seed(n))

    def scores():
        return dpc._dpc_log_density_delta(x, 5, None, False, None)

    lr_f, d_f = _run(monkeypatch, "cpu", scores)
    lr_r, d_r = _run(monkeypatch, "reference", scores)
    torch.testing.assert_close(lr_f, lr_r, rtol=1e-6, atol=1e-7)
    idx_f, _ = dpc._select(lr_f, d_f, dpc.num_kept(n, 6))
    idx_r, _ = dpc._select(lr_r, d_r, dpc.num_kept(n, 6))
    assert torch.equal(idx_f, idx_r)
    # the delta of each token is a distance to a denser one: compare with a direct float64 check
    xf = (x - x.mean(1, keepdim=True)).double()
    dist = torch.cdist(xf, xf)
    for i in range(3):
        order = torch.sort(lr_f[i], descending=True, stable=True).indices
        top, second = order[0].item(), order[1].item()
        assert d_f[i, second].item() == pytest.approx(dist[i, second, top].item(), rel=1e-3, abs=1e-3)
        assert d_f[i, top].item() == pytest.approx(dist[i, top].max().item(), rel=1e-3)


def _copy_groups(grid: tuple[int, int], factor: int, mode: str) -> list[list[int]]:
    """Groups (>= 2) of upsampled tokens with identical interpolation rows: exact copies."""
    idx, w = interp_sparse(grid, factor, mode)
    groups: dict[tuple, list[int]] = {}
    for q in range(idx.shape[0]):
        key = tuple(sorted((int(i), float(v)) for i, v in zip(idx[q], w[q]) if v > 0))
        groups.setdefault(key, []).append(q)
    return [g for g in groups.values() if len(g) > 1]


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_border_copies_tie_bitwise(monkeypatch, backend) -> None:
    grid = (8, 6)
    groups = _copy_groups(grid, 4, "bilinear")
    # bilinear x4 (align_corners=False) clamps two rows and two columns at each border: the four
    # corner blocks of 2 x 2 identical tokens, and pairs along the edges
    assert sum(len(g) == 4 for g in groups) == 4 and len(groups) > 4
    low = torch.randn(2, 48, 16, generator=torch.Generator().manual_seed(3))
    lr, d = _run(monkeypatch, backend,
                 lambda: dpc._dpc_upsampled_log_density_delta(low, grid, 4, "bilinear", 5, None, False, None))
    kept, _ = dpc._select(lr, d, dpc.num_kept(lr.shape[1], 6))
    for b in range(2):
        kept_b = set(kept[b].tolist())
        for grp in groups:
            assert len({lr[b, q].item() for q in grp}) == 1, f"copies {grp} have different densities"
            # the lowest index counts as the densest copy; every other copy is at distance 0 from it
            assert all(d[b, q].item() == 0.0 for q in grp[1:]), f"copies {grp}: delta {d[b, grp].tolist()}"
            assert len(kept_b & set(grp)) <= 1


def test_fast_path_failure_falls_back_with_one_warning(monkeypatch) -> None:
    x = torch.randn(2, 50, 8, generator=torch.Generator().manual_seed(0))
    monkeypatch.setenv(dpc.BACKEND_ENV, "reference")
    want = dpc.dpc_knn_scores(x)

    def broken(*args, **kwargs):
        raise RuntimeError("kernel failed to compile")

    monkeypatch.setattr(dpc_cpu, "plain_dpc", broken)
    monkeypatch.setattr(dpc, "_FAILED", set())
    monkeypatch.setenv(dpc.BACKEND_ENV, "cpu")  # forced: the error is raised
    with pytest.raises(RuntimeError, match="failed to compile"):
        dpc.dpc_knn_scores(x)
    monkeypatch.setenv(dpc.BACKEND_ENV, "auto")  # auto: one warning, then the reference
    with pytest.warns(RuntimeWarning, match="'cpu' failed"):
        got = dpc.dpc_knn_scores(x)
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    assert dpc.backend_for(x) == "reference"


def test_backend_choice(monkeypatch) -> None:
    x = torch.zeros(1, 2, 3)
    monkeypatch.setattr(dpc, "_FAILED", set())
    monkeypatch.delenv(dpc.BACKEND_ENV, raising=False)
    assert dpc.backend_for(x) == "cpu"
    monkeypatch.setattr(dpc_cpu, "nb", None)  # numba missing (e.g. the GPU machine): the reference
    monkeypatch.setattr(dpc, "_CPU_OK", None)  # (asked once per process: numba imports or not)
    assert dpc.backend_for(x) == "reference"
    for mode in ("reference", "cpu", "triton"):
        monkeypatch.setenv(dpc.BACKEND_ENV, mode)
        assert dpc.backend_for(x) == mode
    monkeypatch.setenv(dpc.BACKEND_ENV, "cpu")
    with dpc.use_backend("reference"):   # over the environment, for the block only
        assert dpc.backend_for(x) == "reference"
    assert dpc.backend_for(x) == "cpu"
    with pytest.raises(ValueError, match="backend"):
        with dpc.use_backend("numpy"):
            pass
    monkeypatch.setenv(dpc.BACKEND_ENV, "bogus")
    with pytest.raises(ValueError, match="FTP_POSE_DPC"):
        dpc.backend_for(x)


@pytest.mark.parametrize("upsampled", [False, True])
def test_compiled_selection_is_select_tokens(monkeypatch, upsampled) -> None:
    """Asked for ``num_keep``, the compiled call selects like ``_select`` on its own scores: the
    same tokens apart from near-ties of the score (its log is libm's, not PyTorch's)."""
    g = torch.Generator().manual_seed(5)
    monkeypatch.setenv(dpc.BACKEND_ENV, "cpu")
    for eps in (2, 6, 10):
        if upsampled:
            low = torch.randn(3, 48, 32, generator=g)
            n = 768
            m = dpc.num_kept(n, eps)
            lr, d, idx = dpc._upsampled_scores(low, (8, 6), 4, "bilinear", 5, None, False, None, m)
        else:
            x = torch.randn(3, 144, 32, generator=g)
            x[:, 100:110] = x[:, 99:100]   # exact copies: ties in the score, decided by index
            n = 144
            m = dpc.num_kept(n, eps)
            lr, d, idx = dpc._plain_scores(x, 5, None, False, None, m)
        assert idx is not None and idx.shape == (3, m) and idx.dtype == torch.int64
        want, _ = dpc._select(lr, d, m)
        for i in range(3):
            assert torch.all(idx[i, 1:] > idx[i, :-1]), "kept indices must be ascending and distinct"
            assert not _unexplained_swaps(lr[i], d[i], want[i], idx[i], m, rtol=1e-6)


def test_many_equal_distances_take_the_full_row(monkeypatch) -> None:
    """15 exact copies (small integers, mean exactly 0, so every distance is exact): a copy's near
    tokens (all at distance 0) overflow the near list, so its delta comes from the whole row; the
    result must still be the reference's."""
    base = torch.randint(-3, 4, (2, 20, 8), generator=torch.Generator().manual_seed(2)).float()
    base[:, 1:15] = base[:, 0:1]
    x = torch.cat([base, -base], dim=1)   # 40 tokens, channel sums exactly 0

    def scores():
        return dpc._dpc_log_density_delta(x, 5, None, False, None)

    lr_f, d_f = _run(monkeypatch, "cpu", scores)
    lr_r, d_r = _run(monkeypatch, "reference", scores)
    assert torch.equal(lr_f, lr_r)
    # the same squared distances; the square root may differ by 1 ulp (numba's is correctly
    # rounded, PyTorch's vectorised one not always: seen at 8.156934 -> 2.8560345 vs ...348)
    torch.testing.assert_close(d_f, d_r, rtol=2.5e-7, atol=0.0)
    for group in (range(0, 15), range(20, 35)):   # the lowest index is the densest copy
        assert (d_f[:, list(group)[1:]] == 0).all() and (d_f[:, group[0]] > 0).all()
    # the copies' near lists did overflow (count -1): the full-row path ran
    xf = x - x.mean(1, keepdim=True)
    g, sq = dpc_cpu._np(torch.bmm(xf, xf.transpose(1, 2))), dpc_cpu._np((xf * xf).sum(-1))
    near_d, near_i, near_n = dpc_cpu._near_buffers(2, 40, 6)
    log_rho = torch.empty(2, 40).numpy()
    dpc_cpu.dense_density_items(0, 4, g, sq, 1.0, 6, 40.0, near_d, near_i, near_n, log_rho)
    assert (near_n[:, 0:15] == -1).all() and (near_n[:, 20:35] == -1).all()


@pytest.mark.parametrize("upsampled", [False, True])
def test_parallel_launch_equals_serial_call(monkeypatch, upsampled) -> None:
    """The parallel launchers (used from 2M distance pairs on several threads) compute the same
    numbers as the one serial call: bitwise, since each row's arithmetic is the same."""
    g = torch.Generator().manual_seed(8)
    low = torch.randn(2, 48, 24, generator=g)
    x = torch.randn(2, 200, 24, generator=g)

    def run():
        if upsampled:
            return dpc._upsampled_scores(low, (8, 6), 4, "bilinear", 5, None, False, None, 100)
        return dpc._plain_scores(x, 5, None, False, None, 40)

    monkeypatch.setenv(dpc.BACKEND_ENV, "cpu")
    serial = run()
    threads = torch.get_num_threads()
    monkeypatch.setattr(dpc_cpu, "PARALLEL_MIN_PAIRS", 0)
    try:
        torch.set_num_threads(2)
        parallel = run()
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(serial, parallel):
        assert torch.equal(a, b)


def test_centred_gram_against_float64() -> None:
    """The compiled Gram matrix of centred tokens (small sizes): within float32 rounding of the
    float64 product, symmetric bitwise, its diagonal the squared norms, equal tokens equal rows."""
    x = torch.randn(2, 37, 11, generator=torch.Generator().manual_seed(4)) * 3 + 5   # off-centre tokens
    x[:, 20] = x[:, 3]
    g, sq = dpc_cpu._centred_gram(x)
    assert g.shape == (2, 37, 37) and sq.shape == (2, 37)
    xc = (x - x.mean(1, keepdim=True)).double()
    want = torch.bmm(xc, xc.transpose(1, 2)).numpy()
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-4)
    assert np.array_equal(g, g.transpose(0, 2, 1)) and np.array_equal(sq, np.diagonal(g, axis1=1, axis2=2))
    assert np.array_equal(g[:, 3], g[:, 20])
