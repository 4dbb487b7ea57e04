"""Feature token pruning by density peaks clustering (DPC-KNN), batched and loop-free.

For tokens ``X = {x_1 .. x_N}`` (one ``N x C`` set per batch element) with squared distances
``d_ij = ||x_i - x_j||^2`` (docs/method.md, Eqs. 1 and 2)::

    rho_i   = exp( -1/(k * tau) * sum_{j in kNN(i)} d_ij )     kNN(i): the k nearest OTHER tokens
    delta_i = min_{j denser than i} sqrt(d_ij)                  (max_j sqrt(d_ij) for the densest token)
    score_i = rho_i * delta_i

and the ``ceil(N / eps)`` tokens with the highest score are kept.

Choices the paper leaves open (all configurable):

* **Temperature.** ``tau=None`` means ``tau = C`` (the token width) on raw distances, which is
  TCFormer's ``exp(-mean(d_knn^2))`` with ``cdist / sqrt(C)`` (without its self term).
  ``normalize=True`` divides every squared distance by ``C`` first (TCFormer's scaling, also
  applied to ``delta``) and then ``tau=None`` means ``tau = 1``; both give the same ``rho``,
  ``delta`` only changes by the constant factor ``1/sqrt(C)``, so the selection is identical.
* **Ties, deterministically, without jitter.** Densities are compared in log space
  (``log rho = -sum d / (k tau)``, so nothing underflows) with the strict total order
  "``j`` is denser than ``i`` iff ``rho_j > rho_i`` or (``rho_j == rho_i`` and ``j < i``)".
  Hence exactly one token (the densest) has no denser token; it gets the largest distance
  to any token (0 when all tokens are identical). Selection sorts ``log rho + log delta``
  (a monotone function of ``score``, robust to underflow) in descending order with a stable
  sort, so equal scores are taken by lower index first.
* **Float-level ties.** Results are deterministic for a given input, device and chunk size.
  Exactly duplicated tokens (e.g. the border copies of a bilinear upsampling) have equal
  density only up to float rounding, which may differ between chunk sizes or between
  :func:`dpc_knn_scores` and :func:`dpc_knn_scores_upsampled`; then a different (identical)
  copy may be kept.
* **Kept order.** :func:`prune_tokens` returns the kept indices sorted ascending by original
  index, so spatial / temporal order (and position embeddings) are preserved.

The selection runs under ``torch.no_grad()`` in float32 with autocast off, whatever the
input dtype (float32/float16/bfloat16); only the gather of kept tokens is differentiable.
Squared distances come from ``|x|^2 + |y|^2 - 2 x y^T`` (one matmul, clamped at 0) after
centring the tokens; for large ``B x N x N`` the distance matrix is built in row chunks
(``chunk_size`` rows at a time: kNN via ``topk`` per chunk, ``delta`` via a masked min per
chunk), so N = 3072 runs without materialising every ``B x N x N`` matrix at once.

**Backends.** The code here is the reference and the CPU path. On CUDA, when triton imports,
the density and delta come from the fused kernel of :mod:`ftp_pose.models.dpc_triton`, which
streams distance tiles and never stores an ``N x N`` distance matrix; it implements the same
formulas and tie rule (selection stays here), and differs from the reference only by float
rounding (which can flip exact near-ties). ``FTP_POSE_DPC=reference`` forces this code
everywhere (``auto`` is the default; ``triton`` forces the kernel, also on the CPU under
``TRITON_INTERPRET=1``, for tests). Neither path syncs with the host (CUDA-graph friendly);
``chunk_size`` only applies to the reference (the kernel needs no chunks).
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from typing import Callable

import torch
import torch.nn as nn

from ftp_pose.models.upsample import interp_sparse, upsample_rows

__all__ = ["dpc_knn_scores", "dpc_knn_scores_upsampled", "select_tokens", "gather_tokens", "prune_tokens", "num_kept",
           "DPCPruning", "SELECTIONS", "fixed_selection", "backend_for", "use_backend"]

#: default budget (elements) for one ``B x chunk x N`` float32 block of distances (256 MiB)
DEFAULT_MAX_ELEMENTS = 1 << 26


def num_kept(num_tokens: int, eps: float) -> int:
    """Number of tokens kept out of ``num_tokens`` at pruning ratio ``eps``: ``ceil(N / eps)``."""
    if eps < 1:
        raise ValueError(f"pruning ratio eps must be >= 1, got {eps}")
    return max(1, math.ceil(num_tokens / eps - 1e-9))


def _sq_dists(rows: torch.Tensor, x: torch.Tensor, sq_rows: torch.Tensor, sq_all: torch.Tensor) -> torch.Tensor:
    """Squared distances ``B x R x N`` between ``rows`` (``B x R x C``) and ``x`` (``B x N x C``)."""
    d = sq_rows.unsqueeze(2) + sq_all.unsqueeze(1) - 2.0 * torch.bmm(rows, x.transpose(1, 2))
    return d.clamp_min_(0.0)


def _chunk_rows(b: int, n: int, chunk_size: int | None) -> int:
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_MAX_ELEMENTS // max(1, b * n))
    return max(1, min(n, int(chunk_size)))


@torch.no_grad()
def dpc_knn_scores(
    x: torch.Tensor,
    k: int = 5,
    tau: float | None = None,
    normalize: bool = False,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Local density ``rho``, distance to a denser token ``delta`` and ``score = rho * delta``.

    Args:
        x: tokens, ``B x N x C`` (any float dtype; computed in float32).
        k: number of nearest *other* tokens in the density (clamped to ``N - 1``).
        tau: temperature; ``None`` means ``C`` (raw distances) or ``1`` (``normalize=True``).
        normalize: divide squared distances by ``C`` first (TCFormer's ``cdist / sqrt(C)``).
        chunk_size: rows of the distance matrix per chunk; ``None`` picks it so that one
            ``B x chunk x N`` float32 block stays under 256 MiB.

    Returns:
        ``(rho, delta, score)``, each ``B x N`` float32 on ``x.device``.
    """
    log_rho, delta = _dpc_log_density_delta(x, k, tau, normalize, chunk_size)
    rho = torch.exp(log_rho)
    return rho, delta, rho * delta


#: environment switch for the DPC backend: ``auto`` (the Triton kernel on CUDA when it imports,
#: the numba kernels of :mod:`ftp_pose.models.dpc_cpu` on the CPU when numba imports, else the
#: reference), ``reference`` (always the PyTorch code here), ``cpu`` (the numba kernels) or
#: ``triton`` (also on the CPU, which needs ``TRITON_INTERPRET=1``: only for tests)
BACKEND_ENV = "FTP_POSE_DPC"
BACKENDS = ("auto", "reference", "cpu", "triton")


def _triton_available() -> bool:
    global _TRITON_OK
    if _TRITON_OK is None:
        try:
            import ftp_pose.models.dpc_triton  # noqa: F401
            _TRITON_OK = True
        except Exception:  # no triton, or a triton that cannot load here
            _TRITON_OK = False
    return _TRITON_OK


_TRITON_OK: bool | None = None
_CPU_OK: bool | None = None


def _cpu_available() -> bool:
    global _CPU_OK
    if _CPU_OK is None:
        from ftp_pose.models import dpc_cpu

        _CPU_OK = dpc_cpu.available()
    return _CPU_OK


#: fast backends that failed here under ``auto`` (then the reference runs, after one warning)
_FAILED: set[str] = set()


#: a backend forced by :func:`use_backend` (over :data:`BACKEND_ENV`), else ``None``
_FORCED: str | None = None


@contextlib.contextmanager
def use_backend(name: str):
    """Run the block with the DPC backend ``name`` (one of :data:`BACKENDS`), whatever
    :data:`BACKEND_ENV` says; e.g. ``reference`` to count FLOPs (the compiled loops are invisible
    to PyTorch's FLOP counter)."""
    global _FORCED
    if name not in BACKENDS:
        raise ValueError(f"DPC backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    prior, _FORCED = _FORCED, name
    try:
        yield
    finally:
        _FORCED = prior


def _mode() -> str:
    return _FORCED or os.environ.get(BACKEND_ENV, "auto").strip().lower()


def backend_for(x: torch.Tensor) -> str:
    """The DPC backend that runs for tokens ``x``: ``reference``, ``cpu`` or ``triton``
    (see :data:`BACKEND_ENV` and :func:`use_backend`)."""
    mode = _mode()
    if mode not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)}, got {mode!r}")
    if mode != "auto":
        return mode
    if x.is_cuda:
        fast = "triton" if _triton_available() else "reference"
    else:
        fast = "cpu" if _cpu_available() else "reference"
    return "reference" if fast in _FAILED else fast


def _fast_or_reference(backend: str, fast: Callable[[], tuple], reference: Callable[[], tuple]) -> tuple:
    """``fast()``; under ``auto``, a failure of the fast backend (a kernel that does not compile or
    launch here) warns once and runs ``reference()`` from then on. A forced backend raises."""
    if backend == "reference":
        return reference()
    try:
        return fast()
    except Exception as e:
        if _mode() != "auto":
            raise
        _FAILED.add(backend)
        warnings.warn(f"DPC backend {backend!r} failed ({type(e).__name__}: {e}); using the PyTorch reference "
                      f"from now on (set {BACKEND_ENV}=reference to silence this)", RuntimeWarning, stacklevel=3)
        return reference()


def _autocast_off(device_type: str):
    """A context with autocast off: ``torch.autocast(enabled=False)`` when autocast is on, else a
    no-op (entering an autocast context costs tens of microseconds right after the model's work)."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def centred_tokens(x: torch.Tensor) -> torch.Tensor:
    """``x`` (``B x N x C``) as a detached float32 copy minus its mean token: distances are
    translation invariant, and centred tokens give a better-conditioned Gram matrix."""
    xf = x.detach().float()
    return xf - xf.mean(dim=1, keepdim=True)


def _check_k_tau(k: int, tau: float | None, normalize: bool, c: int) -> float:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if tau is None:
        tau = 1.0 if normalize else float(c)
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    return float(tau)


def _dpc_core(dist_rows: Callable[[int, int], torch.Tensor], b: int, n: int, k: int, tau: float,
              chunk_size: int | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log rho, delta)`` (``B x N`` float32) from ``dist_rows(s, e)``: squared distances ``B x (e-s) x N``.

    ``dist_rows`` returns a fresh float32 tensor (modified in place here). Two passes over row
    chunks: kNN density, then the masked min over denser tokens; with one chunk the distance
    matrix is computed once.
    """
    kk = min(k, n - 1)
    rows_per = _chunk_rows(b, n, chunk_size)
    arange = torch.arange(n, device=device)
    single = rows_per >= n

    def rows(s: int, e: int) -> torch.Tensor:
        d = dist_rows(s, e)
        d[:, arange[s:e] - s, arange[s:e]] = 0.0  # exact zero to itself
        return d

    # pass 1: log-density. The k+1 smallest distances of a row include its own 0 (the smallest
    # possible value), so their sum is the sum over the k nearest OTHER tokens.
    log_rho = torch.zeros(b, n, device=device, dtype=torch.float32)
    d_full = None
    for s in range(0, n, rows_per):
        e = min(n, s + rows_per)
        d = rows(s, e)
        if single:
            d_full = d
        if kk > 0:
            knn = torch.topk(d, kk + 1, dim=-1, largest=False, sorted=True).values  # sorted: fixed sum order
            log_rho[:, s:e] = -knn.sum(-1) / (kk * tau)

    # strict total order: rank 0 = densest; ties in rho go to the lower index
    order = torch.sort(log_rho, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, arange.expand(b, n))

    # pass 2: squared distance to the nearest denser token (sqrt taken on B x N only)
    delta_sq = torch.empty(b, n, device=device, dtype=torch.float32)
    row_max = None if single else torch.empty(b, n, device=device, dtype=torch.float32)
    for s in range(0, n, rows_per):
        e = min(n, s + rows_per)
        d = d_full if single else rows(s, e)
        if row_max is not None:
            row_max[:, s:e] = d.amax(dim=-1)
        denser = rank.unsqueeze(1) < rank[:, s:e].unsqueeze(2)  # B x R x N: j denser than i
        delta_sq[:, s:e] = torch.where(denser, d, float("inf")).amin(dim=-1)
    # the densest token (no denser one): its largest distance to any token
    top = order[:, 0]
    if single:
        far = d_full.gather(1, top.view(b, 1, 1).expand(b, 1, n)).amax(dim=-1).squeeze(1)
    else:
        far = row_max.gather(1, top.view(b, 1)).squeeze(1)  # no host sync
    delta_sq.scatter_(1, top.view(b, 1), far.view(b, 1))
    return log_rho, delta_sq.clamp_min_(0.0).sqrt_()


#: ``(log rho, delta, kept)``: ``B x N`` float32 each, and the ``B x num_keep`` kept indices when
#: the backend selected them itself (the numba path, asked with ``num_keep > 0``), else ``None``
Scores = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]


def _dpc_log_density_delta(
    x: torch.Tensor, k: int, tau: float | None, normalize: bool, chunk_size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log rho, delta)``, each ``B x N`` float32 (see :func:`dpc_knn_scores`)."""
    return _plain_scores(x, k, tau, normalize, chunk_size)[:2]


@torch.compiler.disable  # runs eagerly under torch.compile: short compiles, kernel launched as is
@torch.no_grad()
def _plain_scores(x: torch.Tensor, k: int, tau: float | None, normalize: bool, chunk_size: int | None,
                  num_keep: int = 0) -> Scores:
    """:data:`Scores` of the tokens ``x`` (``B x N x C``; see :func:`dpc_knn_scores`)."""
    if x.dim() != 3:
        raise ValueError(f"dpc_knn_scores expects tokens B x N x C, got shape {tuple(x.shape)}")
    b, n, c = x.shape
    tau = _check_k_tau(k, tau, normalize, c)
    scale = 1.0 / c if normalize else 1.0
    with _autocast_off(x.device.type):
        def triton() -> Scores:
            from ftp_pose.models.dpc_triton import identity_mix, mixed_gram_dpc

            xf = centred_tokens(x)
            return (*mixed_gram_dpc(torch.bmm(xf, xf.transpose(1, 2)), *identity_mix(n, x.device), k, tau, scale,
                                    num_mix=1), None)

        def cpu() -> Scores:
            from ftp_pose.models.dpc_cpu import plain_dpc

            # centring, Gram matrix and squared norms (its diagonal) in the compiled call at small
            # sizes, else the reference's; fused reductions
            return plain_dpc(x, k, tau, scale, num_keep)

        def reference() -> Scores:
            xf = centred_tokens(x)
            sq = (xf * xf).sum(-1)  # B x N

            def dist_rows(s: int, e: int) -> torch.Tensor:
                d = _sq_dists(xf[:, s:e], xf, sq[:, s:e], sq)
                return d.mul_(scale) if scale != 1.0 else d

            return (*_dpc_core(dist_rows, b, n, k, tau, chunk_size, x.device), None)

        backend = backend_for(x)
        return _fast_or_reference(backend, triton if backend == "triton" else cpu, reference)


def _dpc_upsampled_log_density_delta(
    low: torch.Tensor, grid_size: tuple[int, int], factor: int, mode: str, k: int, tau: float | None,
    normalize: bool, chunk_size: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log rho, delta)`` (each ``B x N`` float32) of the upsampled tokens: see :func:`_upsampled_scores`."""
    return _upsampled_scores(low, grid_size, factor, mode, k, tau, normalize, chunk_size)[:2]


@torch.compiler.disable  # runs eagerly under torch.compile: short compiles, kernel launched as is
@torch.no_grad()
def _upsampled_scores(
    low: torch.Tensor, grid_size: tuple[int, int], factor: int, mode: str, k: int, tau: float | None,
    normalize: bool, chunk_size: int | None, num_keep: int = 0,
) -> Scores:
    """:data:`Scores` of the ``(f*h) x (f*w)`` tokens obtained by interpolating ``low`` (``B x (h*w) x C``).

    Interpolation is linear: ``X_up = W X`` with ``W`` the ``N x m`` interpolation matrix
    (:mod:`ftp_pose.models.upsample`, ``N = f^2 h w``, ``m = h w``), so the Gram matrix of the
    upsampled set is ``W G W^T`` with ``G = X X^T`` the small ``m x m`` Gram matrix: two
    applications of ``W`` (at most 4 taps per row: gathers here, a matmul for the Triton kernel's
    ``W G``, fused loops in :mod:`ftp_pose.models.dpc_cpu`) instead of an ``N x N x C`` product
    (about 100x fewer FLOPs for 3072 tokens of width 768). Same result as running DPC on the
    upsampled tokens. On the Triton path the kernel reads ``W G``
    (``B x N x m``) and mixes its <= 4 entries per distance.
    """
    if low.dim() != 3:
        raise ValueError(f"expected low-resolution tokens B x N x C, got shape {tuple(low.shape)}")
    b, m, c = low.shape
    h, w = grid_size
    if m != h * w:
        raise ValueError(f"{m} tokens do not form a {h} x {w} grid")
    tau = _check_k_tau(k, tau, normalize, c)
    scale = 1.0 / c if normalize else 1.0
    with _autocast_off(low.device.type):
        def centred_gram() -> torch.Tensor:
            xf = centred_tokens(low)  # interpolation weights sum to 1: centring commutes
            return torch.bmm(xf, xf.transpose(1, 2))  # B x m x m

        def triton() -> Scores:
            from ftp_pose.models.dpc_triton import mixed_gram_dpc

            # W G by the matrix product also off CUDA (interpreter tests): equal rows of W (the
            # border copies) then give bitwise-equal rows of W G, so copies tie exactly
            gw = upsample_rows(centred_gram(), grid_size, factor, mode, method="matmul").transpose(1, 2)
            return (*mixed_gram_dpc(gw, *interp_sparse(grid_size, factor, mode, low.device), k, tau, scale,
                                    num_mix=4 if mode == "bilinear" else 1), None)

        def cpu() -> Scores:
            from ftp_pose.models.dpc_cpu import bilinear_dpc

            return bilinear_dpc(low, grid_size, factor, mode, k, tau, scale, num_keep)

        def reference() -> Scores:
            # each upsampled token mixes <= 4 low-res tokens: W = (index, weight), N x 4. Rows of
            # W G and of W G W^T are 4-tap mixes (gathers, a fixed order of sums), and the squared
            # norms are the diagonal of the same mixed Gram matrix: exact copies (the clamped
            # border blocks, equal rows of W) get bitwise-equal distances, so they tie exactly
            idx, wts = interp_sparse(grid_size, factor, mode, low.device)
            idx = idx.long()

            def mix(rows: torch.Tensor) -> torch.Tensor:
                """``rows W^T`` by the 4 taps: ``B x R x m -> B x R x N``."""
                out = rows[..., idx[:, 0]] * wts[:, 0]
                for t in range(1, idx.shape[1]):
                    out = out + rows[..., idx[:, t]] * wts[:, t]
                return out

            gw = mix(centred_gram()).transpose(1, 2).contiguous()  # W G = (G W^T)^T (G is symmetric): B x N x m
            n = gw.shape[1]
            diag = torch.gather(gw, 2, idx.unsqueeze(0).expand(b, n, idx.shape[1]))  # B x N x 4
            sq = diag[..., 0] * wts[:, 0]
            for t in range(1, idx.shape[1]):
                sq = sq + diag[..., t] * wts[:, t]

            def dist_rows(s: int, e: int) -> torch.Tensor:
                g = mix(gw[:, s:e])  # rows s:e of W G W^T
                d = (sq[:, s:e].unsqueeze(2) + sq.unsqueeze(1)).sub_(g, alpha=2.0).clamp_min_(0.0)
                return d.mul_(scale) if scale != 1.0 else d

            return (*_dpc_core(dist_rows, b, n, k, tau, chunk_size, low.device), None)

        backend = backend_for(low)
        return _fast_or_reference(backend, triton if backend == "triton" else cpu, reference)


@torch.no_grad()
def dpc_knn_scores_upsampled(
    low: torch.Tensor, grid_size: tuple[int, int], factor: int = 4, mode: str = "bilinear", k: int = 5,
    tau: float | None = None, normalize: bool = False, chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`dpc_knn_scores` of ``interpolate(low)`` (``B x (h*w) x C`` on an ``h x w`` grid,
    upsampled ``factor`` x per side, ``mode`` bilinear (align_corners False) or nearest), without
    forming the ``B x N x N x C`` work. Returns ``(rho, delta, score)``, each ``B x (f^2 h w)``."""
    log_rho, delta = _dpc_upsampled_log_density_delta(low, grid_size, factor, mode, k, tau, normalize, chunk_size)
    rho = torch.exp(log_rho)
    return rho, delta, rho * delta


@torch.no_grad()
def select_tokens(score: torch.Tensor, num_keep: int, log_score: torch.Tensor | None = None) -> torch.Tensor:
    """Indices (``B x num_keep``, ascending) of the ``num_keep`` highest scores; ties -> lower index.

    ``log_score``, when given, is sorted instead of ``score`` (same order, no underflow).
    """
    key = score if log_score is None else log_score
    top = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :num_keep]
    return torch.sort(top, dim=1).values


def _select(log_rho: torch.Tensor, delta: torch.Tensor, num_keep: int, scores: bool = True):
    """Selected indices ``B x num_keep`` (ascending) and ``(rho, delta, score)`` (``None`` unless
    ``scores``: the selection itself needs only ``log rho + log delta``)."""
    with torch.no_grad():
        # log rho + log delta orders like rho * delta but cannot underflow (delta == 0 -> -inf)
        log_score = log_rho + torch.log(delta)
        idx = select_tokens(log_score, num_keep)
        if not scores:
            return idx, None
        rho = torch.exp(log_rho)
    return idx, (rho, delta, rho * delta)


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b]]``: ``B x N x C`` and ``B x M`` -> ``B x M x C`` (differentiable in ``x``).

    One ``index_select`` of whole rows over the flattened batch (a row copy per token; on the CPU
    several times faster than ``torch.gather`` with an expanded ``B x M x C`` index)."""
    b, n, c = x.shape
    flat = index if b == 1 else index + torch.arange(0, b * n, n, device=index.device).unsqueeze(1)
    return x.reshape(b * n, c).index_select(0, flat.reshape(-1)).view(b, index.shape[1], c)


def prune_tokens(
    x: torch.Tensor,
    eps: float,
    k: int = 5,
    tau: float | None = None,
    normalize: bool = False,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``ceil(N / eps)`` DPC-KNN cluster-centre tokens of ``x`` (``B x N x C``).

    Returns ``(kept_tokens B x M x C, kept_index B x M)``; indices ascending (original order).
    ``eps == 1`` keeps every token in its original order and skips the computation.
    """
    if x.dim() != 3:
        raise ValueError(f"prune_tokens expects tokens B x N x C, got shape {tuple(x.shape)}")
    b, n, _ = x.shape
    m = num_kept(n, eps)
    if m >= n:
        return x, torch.arange(n, device=x.device).expand(b, n)
    log_rho, delta, idx = _plain_scores(x, k, tau, normalize, chunk_size, m)
    if idx is None:
        idx, _ = _select(log_rho, delta, m, scores=False)
    return gather_tokens(x, idx), idx


#: how :class:`DPCPruning` picks its tokens: the DPC-KNN score (the method), evenly spaced indices
#: (no selection cost: the benchmark's "free selection", which isolates what the selection costs)
#: or a seeded random subset (the control that asks whether DPC beats chance at the same eps)
SELECTIONS = ("dpc", "even", "random")


def fixed_selection(b: int, n: int, m: int, selection: str, seed: int = 0, device: torch.device | str = "cpu"
                    ) -> torch.Tensor:
    """``B x m`` ascending indices out of ``n`` for the ``even`` and ``random`` selections.

    ``even``: ``round(linspace(0, n - 1, m))`` (distinct for ``m <= n``), the same for every
    sample; ``random``: a seeded random subset per sample (same seed, same subsets)."""
    if selection == "even":
        idx = torch.linspace(0, n - 1, m, dtype=torch.float64).round().long()
        return idx.to(device).expand(b, m)
    if selection == "random":
        g = torch.Generator().manual_seed(int(seed))
        idx = torch.stack([torch.randperm(n, generator=g)[:m] for _ in range(b)])
        return torch.sort(idx, dim=1).values.to(device)
    raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")


class DPCPruning(nn.Module):
    """DPC-KNN token pruning as a module (no parameters): ``B x N x C -> B x M x C``.

    ``forward(x, return_scores=False, values=None, upsample=None)`` returns ``(kept,
    kept_index, scores)``: tokens are selected on ``x`` and gathered from ``values`` (default
    ``x``; e.g. the same tokens plus a position embedding); ``scores`` is ``(rho, delta, score)``
    (each ``B x N``) when ``return_scores`` is set, else ``None`` (the selection needs only
    ``log rho + log delta``). With ``upsample=(grid_size,
    factor, mode)``, ``x`` is the low-resolution ``B x (h*w) x C`` set and the tokens pruned are
    its interpolation (``values`` must then be given), via :func:`dpc_knn_scores_upsampled`.
    With ``eps == 1`` nothing is computed unless ``return_scores`` is set (for drawing).
    ``selection`` (:data:`SELECTIONS`, an attribute that may be changed at any time): ``dpc``, or
    the same number of ``even`` / seeded ``random`` tokens without computing any score.
    """

    def __init__(self, eps: float = 1.0, k: int = 5, tau: float | None = None,
                 normalize: bool = False, chunk_size: int | None = None, selection: str = "dpc",
                 seed: int = 0) -> None:
        super().__init__()
        num_kept(1, eps)  # validates eps
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        self.eps, self.k, self.tau, self.normalize, self.chunk_size = float(eps), int(k), tau, normalize, chunk_size
        self.selection, self.seed = selection, int(seed)

    def extra_repr(self) -> str:
        sel = "" if self.selection == "dpc" else f", selection={self.selection}"
        return f"eps={self.eps:g}, k={self.k}, tau={self.tau}, normalize={self.normalize}{sel}"

    def forward(self, x: torch.Tensor, return_scores: bool = False, values: torch.Tensor | None = None,
                upsample: tuple[tuple[int, int], int, str] | None = None):
        if upsample is not None and values is None:
            raise ValueError("DPCPruning: upsample=... needs the upsampled tokens as values")
        values = x if values is None else values
        b, n, _ = values.shape
        m = num_kept(n, self.eps)
        if m >= n and not return_scores:
            return values, torch.arange(n, device=x.device).expand(b, n), None
        if self.selection != "dpc" and m < n:
            idx = fixed_selection(b, n, m, self.selection, self.seed, values.device)
            return gather_tokens(values, idx), idx, None
        # the numba backend selects inside its one compiled call (num_keep > 0); others return None
        ask = 0 if (return_scores or m >= n) else m
        if upsample is None:
            log_rho, delta, idx = _plain_scores(x, self.k, self.tau, self.normalize, self.chunk_size, ask)
        else:
            log_rho, delta, idx = _upsampled_scores(x, *upsample, self.k, self.tau, self.normalize, self.chunk_size,
                                                    ask)
        if log_rho.shape != (b, n):
            raise ValueError(f"DPCPruning: scores {tuple(log_rho.shape)} do not match values {tuple(values.shape)}")
        scores = None
        if idx is None:
            idx, scores = _select(log_rho, delta, m, scores=return_scores)
        if m >= n:
            return values, torch.arange(n, device=x.device).expand(b, n), scores
        return gather_tokens(values, idx), idx, scores
