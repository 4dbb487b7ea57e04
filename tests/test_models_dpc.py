"""DPC-KNN token pruning: against a plain Python-loop reference, and its properties."""
from __future__ import annotations

import math

import pytest
import torch

from ftp_pose.models import dpc
from ftp_pose.models.dpc import DPCPruning, dpc_knn_scores, num_kept, prune_tokens


def reference_dpc(x: torch.Tensor, k: int, tau: float, num_keep: int):
    """Obviously-correct DPC-KNN on one ``N x C`` set, with Python loops, in float64."""
    x = x.double()
    n = x.shape[0]
    d = [[float(((x[i] - x[j]) ** 2).sum()) for j in range(n)] for i in range(n)]
    kk = min(k, n - 1)
    rho = []
    for i in range(n):
        others = sorted(d[i][j] for j in range(n) if j != i)
        rho.append(math.exp(-sum(others[:kk]) / (kk * tau)))

    def denser(j, i):
        return rho[j] > rho[i] or (rho[j] == rho[i] and j < i)

    delta = []
    for i in range(n):
        cand = [math.sqrt(d[i][j]) for j in range(n) if denser(j, i)]
        delta.append(min(cand) if cand else max(math.sqrt(v) for v in d[i]))
    score = [r * dl for r, dl in zip(rho, delta)]
    order = sorted(range(n), key=lambda i: (-score[i], i))
    return torch.tensor(rho, dtype=torch.float64), torch.tensor(delta, dtype=torch.float64), sorted(order[:num_keep])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("n,c,k", [(7, 3, 2), (13, 5, 5), (20, 8, 3)])
def test_matches_loop_reference(seed: int, n: int, c: int, k: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, n, c, generator=g, dtype=torch.float64).float()
    rho, delta, score = dpc_knn_scores(x, k=k)
    eps = 3.0
    kept, idx = prune_tokens(x, eps, k=k)
    for b in range(2):
        r_ref, d_ref, keep_ref = reference_dpc(x[b], k, tau=float(c), num_keep=num_kept(n, eps))
        torch.testing.assert_close(rho[b].double(), r_ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(delta[b].double(), d_ref, rtol=1e-5, atol=1e-5)
        assert idx[b].tolist() == keep_ref
        torch.testing.assert_close(kept[b], x[b, keep_ref])
    torch.testing.assert_close(score, rho * delta)


def test_tau_and_normalize_options() -> None:
    x = torch.randn(1, 15, 6, generator=torch.Generator().manual_seed(5))
    rho, delta, _ = dpc_knn_scores(x, k=4, tau=2.0)
    r_ref, d_ref, _ = reference_dpc(x[0], 4, tau=2.0, num_keep=3)
    torch.testing.assert_close(rho[0].double(), r_ref, rtol=1e-5, atol=1e-6)
    # normalize: distances / C with tau = 1 -> same rho, delta scaled by 1/sqrt(C), same selection
    rho_n, delta_n, _ = dpc_knn_scores(x, k=5, normalize=True)
    rho_c, delta_c, _ = dpc_knn_scores(x, k=5)
    torch.testing.assert_close(rho_n, rho_c, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(delta_n, delta_c / math.sqrt(6), rtol=1e-5, atol=1e-6)
    assert torch.equal(prune_tokens(x, 4, normalize=True)[1], prune_tokens(x, 4)[1])


@pytest.mark.parametrize("n,eps", [(3072, 6), (576, 6), (576, 10), (100, 3), (7, 1), (7, 7), (9, 100)])
def test_kept_count_unique_sorted(n: int, eps: float) -> None:
    x = torch.randn(2, n, 4, generator=torch.Generator().manual_seed(n))
    kept, idx = prune_tokens(x, eps)
    m = math.ceil(n / eps)
    assert kept.shape == (2, m, 4) and idx.shape == (2, m)
    for row in idx:
        assert len(set(row.tolist())) == m
        assert torch.all(row[1:] > row[:-1])


def test_eps_one_keeps_everything_in_order() -> None:
    x = torch.randn(3, 11, 5)
    kept, idx = prune_tokens(x, 1)
    assert kept is x and idx.tolist() == [list(range(11))] * 3
    with pytest.raises(ValueError, match="eps"):
        prune_tokens(x, 0.5)


def test_permutation_equivariance() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 40, 6, generator=g)
    perm = torch.randperm(40, generator=g)
    _, idx = prune_tokens(x, 5)
    _, idx_p = prune_tokens(x[:, perm], 5)
    assert set(idx[0].tolist()) == set(perm[idx_p[0]].tolist())


def test_cluster_centres_are_kept() -> None:
    """4 well-separated blobs (a centre point, a ring of 6 at radius 0.5, a ring of 8 at radius 1.5,
    randomly rotated): when M = 4 the kept tokens are exactly the 4 centres."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    pts, centre_rows = [], []
    for ci, c in enumerate(centres):
        rings = [c.unsqueeze(0)]
        for count, radius in ((6, 0.5), (8, 1.5)):
            a = 2 * math.pi * (torch.arange(count) / count + torch.rand(1, generator=g))
            rings.append(c + radius * torch.stack([a.cos(), a.sin()], 1))
        centre_rows.append(ci * 15)
        pts.append(torch.cat(rings))
    x = torch.cat(pts)  # 60 x 2
    perm = torch.randperm(60, generator=g)
    x = x[perm].unsqueeze(0)
    centre_pos = sorted(int((perm == r).nonzero()) for r in centre_rows)
    _, idx = prune_tokens(x, 15, k=5)  # M = 4 = number of clusters
    assert idx[0].tolist() == centre_pos


def test_identical_tokens_no_nan_deterministic() -> None:
    x = torch.ones(2, 30, 8) * 3.7
    rho, delta, score = dpc_knn_scores(x)
    for t in (rho, delta, score):
        assert torch.isfinite(t).all()
    assert torch.allclose(rho, torch.ones_like(rho)) and torch.all(delta == 0)
    _, idx = prune_tokens(x, 6)
    assert idx.tolist() == [list(range(5))] * 2


def test_half_precision_inputs_same_selection() -> None:
    g = torch.Generator().manual_seed(1)
    centres = 10 * torch.randn(6, 16, generator=g)
    x = (centres.repeat_interleave(12, 0) + 0.5 * torch.randn(72, 16, generator=g)).unsqueeze(0)
    _, idx32 = prune_tokens(x, 12)
    for dtype in (torch.float16, torch.bfloat16):
        kept, idx = prune_tokens(x.to(dtype), 12)
        assert kept.dtype == dtype
        assert torch.equal(idx, idx32)
        rho, _, _ = dpc_knn_scores(x.to(dtype))
        assert rho.dtype == torch.float32


def test_chunked_equals_unchunked() -> None:
    x = torch.randn(2, 50, 7, generator=torch.Generator().manual_seed(9))
    full = dpc_knn_scores(x, k=4)
    for chunk in (1, 7, 49):
        part = dpc_knn_scores(x, k=4, chunk_size=chunk)
        for a, b in zip(full, part):
            torch.testing.assert_close(a, b)
    assert torch.equal(prune_tokens(x, 6, chunk_size=7)[1], prune_tokens(x, 6)[1])


def test_gather_is_differentiable() -> None:
    x = torch.randn(2, 24, 5, requires_grad=True)
    kept, idx = prune_tokens(x, 4)
    kept.sum().backward()
    expected = torch.zeros(2, 24)
    expected.scatter_(1, idx, 1.0)
    assert torch.equal(x.grad.abs().sum(-1) > 0, expected > 0)


def test_module_has_no_parameters_and_returns_scores() -> None:
    mod = DPCPruning(eps=6, k=5)
    assert sum(p.numel() for p in mod.parameters()) == 0
    x = torch.randn(2, 60, 4)
    kept, idx, scores = mod(x, return_scores=True)
    assert kept.shape == (2, 10, 4) and len(scores) == 3 and scores[0].shape == (2, 60)
    kept1, idx1, none = DPCPruning(eps=1)(x)
    assert kept1 is x and none is None
    _, _, scores1 = DPCPruning(eps=1)(x, return_scores=True)
    assert scores1[2].shape == (2, 60)


def test_bad_shape_error() -> None:
    with pytest.raises(ValueError, match="B x N x C"):
        dpc_knn_scores(torch.randn(5, 4))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_upsampled_path_matches_explicit_upsampling(mode: str) -> None:
    """DPC of interpolated tokens computed from the small Gram matrix == DPC of the explicit tokens
    (up to float-level ties between exact duplicates, which keep a different identical copy)."""
    import torch.nn.functional as F

    from ftp_pose.models.dpc import dpc_knn_scores_upsampled

    g = torch.Generator().manual_seed(4)
    low = torch.randn(2, 48, 16, generator=g)  # an 8 x 6 grid
    kw = {"align_corners": False} if mode == "bilinear" else {}
    up = F.interpolate(low.transpose(1, 2).reshape(2, 16, 8, 6), scale_factor=4, mode=mode, **kw)
    up = up.flatten(2).transpose(1, 2)  # 2 x 768 x 16
    rho, delta, _ = dpc_knn_scores(up)
    rho_u, delta_u, _ = dpc_knn_scores_upsampled(low, (8, 6), 4, mode)
    torch.testing.assert_close(rho_u, rho, rtol=1e-5, atol=1e-5)
    _, idx_e, _ = DPCPruning(eps=6)(up)
    kept_u, idx_u, _ = DPCPruning(eps=6)(low, values=up, upsample=((8, 6), 4, mode))
    assert idx_u.shape == idx_e.shape == (2, 128)
    for b in range(2):  # same kept features (as a set of vectors)
        fe = {tuple(v) for v in up[b, idx_e[b]].round(decimals=4).tolist()}
        fu = {tuple(v) for v in kept_u[b].round(decimals=4).tolist()}
        assert len(fe & fu) >= 0.95 * len(fe)


@pytest.mark.parametrize("b,n,c,m", [(1, 768, 96, 128), (3, 50, 7, 9), (2, 10, 4, 10)])
def test_gather_tokens_is_torch_gather(b, n, c, m) -> None:
    """Rows by index_select over the flattened batch == torch.gather with the expanded index,
    values and gradient (also for a non-contiguous input)."""
    g = torch.Generator().manual_seed(b * n)
    x = torch.randn(b, n, 2 * c, generator=g)[:, :, ::2].requires_grad_(True)
    idx = torch.sort(torch.stack([torch.randperm(n, generator=g)[:m] for _ in range(b)]), 1).values
    want = torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, c))
    got = dpc.gather_tokens(x, idx)
    assert torch.equal(got, want)
    w = torch.randn(b, m, c, generator=g)
    (grad_got,) = torch.autograd.grad((got * w).sum(), x)
    (grad_want,) = torch.autograd.grad((want * w).sum(), x)
    assert torch.equal(grad_got, grad_want)
