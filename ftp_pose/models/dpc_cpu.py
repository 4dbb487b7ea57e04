"""DPC-KNN density and delta on the CPU by fused loops compiled with numba (the CPU twin of
:mod:`ftp_pose.models.dpc_triton`).

The reference (:mod:`ftp_pose.models.dpc`) builds ``B x R x N`` blocks of squared distances and
runs ``F.interpolate`` (HRB), ``topk``, ``sort`` and a masked ``min`` over them: about ten passes
over every ``N x N`` block, each a separate PyTorch dispatch. Here one compiled loop per row
computes the row's distances into a small buffer and reduces it at once; nothing of size
``N x N`` is stored.

**HRB: distances from the low-resolution Gram matrix.** The ``N = (f h) x (f w)`` upsampled
tokens are ``X_up = W X`` with ``W = W_y (x) W_x`` (bilinear or nearest, separable: every output
row / column mixes at most 2 input rows / columns). Their Gram matrix is ``W G W^T`` with
``G = X X^T`` the ``m x m`` Gram matrix of the ``m = h w`` centred low-resolution tokens. For
row ``p``::

    r_p   = (W G)[p]                 4 rows of G mixed       (m values)
    t_p   = r_p mixed along x         2 taps per column       (h x fw values)
    g_pq  = t_p mixed along y         2 taps per row          (N values, one contiguous
                                                              axpy per output row)
    d_pq  = max(s_p + s_q - 2 g_pq, 0) * scale,   d_pp = 0,   s_q = g_qq

so one distance costs 2 multiply-adds on contiguous memory (the issue's "4 taps", split by
separability) instead of ``C`` products. ``s_q`` is the diagonal of the same mixed Gram matrix,
computed with the same operations in the same order, so exact copies (the clamped border blocks
of a bilinear upsampling) get bitwise-equal distances and densities, and the index tie rule
decides between them, as in the reference.

**Plain tokens (LRB).** The distance blocks come from the reference's own code (one ``bmm``);
only the reductions (``k + 1`` smallest, the masked min) run here.

**Reductions.** Density: the ``k + 1`` smallest distances of a row (its own 0 included) by
insertion into a sorted array of ``k + 1`` values, summed in ascending order. Delta: the min
over denser tokens with the reference's tie rule ("``j`` is denser than ``i`` iff
``log rho_j > log rho_i`` or (equal and ``j < i``)"), evaluated on ``log rho`` directly, and the
row's max for the densest token.

**Agreement with the reference.** Same formulas and tie rule; sums are rounded differently
(separable mixes instead of ``F.interpolate``, an ascending ``k + 1`` sum instead of ``topk``'s
sum), so *near-ties* (densities or scores within a few ulps) may flip. No fast-math flag that
reorders or contracts arithmetic is used; the delta loop allows ``nnan``/``ninf`` only, which
changes no finite result. Threads: numba's, as many as ``torch.get_num_threads()``, for calls
with at least :data:`PARALLEL_MIN_PAIRS` distance pairs; smaller calls (the quick preset) and
one-thread runs loop serially, since a parallel launch costs about 0.1 ms.

numba is optional: :func:`available` says whether it imports here; :mod:`ftp_pose.models.dpc`
falls back to the reference without it (e.g. on the GPU machine, which uses Triton).
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["available", "bilinear_gram_dpc", "gram_dpc", "order_rank"]

#: rows per parallel work item (scratch buffers are allocated once per item)
ROWS_PER_ITEM = 32


try:  # optional: without numba, ftp_pose.models.dpc uses the reference
    import numba as nb
    from numba import prange

    if "NUMBA_THREADING_LAYER" not in os.environ:
        # numba's own thread pool: an OpenMP pool beside PyTorch's spins against it (measured
        # 10-100x slower calls on 2 cores); set NUMBA_THREADING_LAYER to choose another
        nb.config.THREADING_LAYER = "workqueue"
except Exception:  # not installed, or a build that cannot load here
    nb = None


def available() -> bool:
    """Whether numba imports here (the kernels are compiled on first use, then cached on disk)."""
    return nb is not None


if nb is not None:
    _F0, _F2, _INF = np.float32(0.0), np.float32(2.0), np.float32(np.inf)
    _BIG = np.float32(np.finfo(np.float32).max)

    @nb.njit(inline="always")
    def insert(best, d):
        """Insert ``d`` into the ascending array ``best`` if it is smaller than its last entry."""
        j = best.shape[0] - 1
        if d < best[j]:
            while j > 0 and best[j - 1] > d:
                best[j] = best[j - 1]
                j -= 1
            best[j] = d

    @nb.njit(inline="always")
    def insert_block(best, blk):
        """Insert the entries of ``blk`` that beat ``best``'s last (a vectorised count skips the block)."""
        thr = best[best.shape[0] - 1]
        cnt = 0
        for q in range(blk.shape[0]):
            cnt += blk[q] < thr
        if cnt > 0:
            for q in range(blk.shape[0]):
                insert(best, blk[q])

    @nb.njit(inline="always")
    def denser_min(row, order, rp):
        """Min of ``row`` over the ``rp`` tokens denser than the row's own (``order``: tokens from
        the densest down, i.e. the reference's stable descending sort of ``log rho``, so "denser"
        is "earlier in ``order``", ties to the lower index). ``_BIG`` when there is none."""
        best = _BIG
        for j in range(rp):
            x = row[order[j]]
            best = x if x < best else best
        return best

    @nb.njit(inline="always")
    def taps(p, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1):
        """The 4 low-res tokens of upsampled token ``p`` (row-major) and the two weights per axis."""
        py = p // wo
        px = p - py * wo
        return (ty0[py] * w + tx0[px], ty0[py] * w + tx1[px], ty1[py] * w + tx0[px], ty1[py] * w + tx1[px],
                wy0[py], wy1[py], wx0[px], wx1[px])

    @nb.njit(inline="always")
    def mixed_row(gx_b, p, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, t):
        """``t = (W G)[p]`` with its columns already mixed along x (``gx_b``: ``m x (h wo)``)."""
        a00, a01, a10, a11, u0, u1, v0, v1 = taps(p, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1)
        g00, g01, g10, g11 = gx_b[a00], gx_b[a01], gx_b[a10], gx_b[a11]
        for j in range(t.shape[0]):
            t[j] = u0 * (v0 * g00[j] + v1 * g01[j]) + u1 * (v0 * g10[j] + v1 * g11[j])

    @nb.njit(inline="always")
    def dist_row(t, p, s_b, wo, ho, ty0, ty1, wy0, wy1, scale, out):
        """Squared distances of row ``p`` to all ``N`` tokens from its ``t`` (see module doc)."""
        sp = s_b[p]
        for qy in range(ho):
            c0, c1 = wy0[qy], wy1[qy]
            t0 = t[ty0[qy] * wo:ty0[qy] * wo + wo]
            t1 = t[ty1[qy] * wo:ty1[qy] * wo + wo]
            so = s_b[qy * wo:(qy + 1) * wo]
            oo = out[qy * wo:(qy + 1) * wo]
            for qx in range(wo):
                oo[qx] = max((sp + so[qx]) - _F2 * (c0 * t0[qx] + c1 * t1[qx]), _F0) * scale
        out[p] = 0.0

    # Each kernel is a serial loop over work items (``*_items(i0, i1, ...)``: rows of one sample,
    # ROWS_PER_ITEM at a time, scratch allocated once) and a parallel launcher over the same items
    # (``*_par``): a parallel launch costs about 0.1 ms here, more than the whole work of the quick
    # preset, so small problems and one-thread runs call the serial loop directly.

    @nb.njit(cache=True)
    def bilinear_diag_items(i0, i1, gx, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, s):
        """``s[b, q] = (W G W^T)[q, q]`` for samples ``b`` in ``[i0, i1)``: the two entries of ``t_q``
        that ``dist_row`` mixes at column ``q``, each by ``mixed_row``'s expression, then the y-mix."""
        n = ho * wo
        for b in range(i0, i1):
            g = gx[b]
            for q in range(n):
                a00, a01, a10, a11, u0, u1, v0, v1 = taps(q, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1)
                qy = q // wo
                j0 = ty0[qy] * wo + (q - qy * wo)
                j1 = ty1[qy] * wo + (q - qy * wo)
                t0 = u0 * (v0 * g[a00, j0] + v1 * g[a01, j0]) + u1 * (v0 * g[a10, j0] + v1 * g[a11, j0])
                t1 = u0 * (v0 * g[a00, j1] + v1 * g[a01, j1]) + u1 * (v0 * g[a10, j1] + v1 * g[a11, j1])
                s[b, q] = wy0[qy] * t0 + wy1[qy] * t1

    @nb.njit(parallel=True, cache=True)
    def bilinear_diag_par(gx, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, s):
        for b in prange(gx.shape[0]):
            bilinear_diag_items(b, b + 1, gx, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, s)

    @nb.njit(cache=True)
    def bilinear_density_items(i0, i1, g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, kp1, ktau,
                               out):
        n = ho * wo
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        t = np.empty(g.shape[2], dtype=np.float32)
        row = np.empty(n, dtype=np.float32)
        best = np.empty(kp1, dtype=np.float32)
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                mixed_row(g[b], p, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, t)
                dist_row(t, p, s[b], wo, ho, ty0, ty1, wy0, wy1, scale, row)
                best[:] = _INF
                py = p // wo
                for i in range(ho):  # p's own grid row first: its nearest tokens lower the bar early
                    qy = py + i if py + i < ho else py + i - ho
                    insert_block(best, row[qy * wo:(qy + 1) * wo])
                acc = _F0
                for j in range(kp1):
                    acc += best[j]
                out[b, p] = -acc / ktau

    @nb.njit(parallel=True, cache=True)
    def bilinear_density_par(g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, kp1, ktau, out):
        per = (ho * wo + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        for item in prange(g.shape[0] * per):
            bilinear_density_items(item, item + 1, g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale,
                                   kp1, ktau, out)

    @nb.njit(cache=True)
    def bilinear_delta_items(i0, i1, g, s, order, rank, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale,
                             out):
        n = ho * wo
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        t = np.empty(g.shape[2], dtype=np.float32)
        row = np.empty(n, dtype=np.float32)
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                mixed_row(g[b], p, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, t)
                dist_row(t, p, s[b], wo, ho, ty0, ty1, wy0, wy1, scale, row)
                d = denser_min(row, order[b], rank[b, p])
                if rank[b, p] == 0:  # the densest token: its largest distance (its own 0 included)
                    d = _F0
                    for q in range(n):
                        d = row[q] if row[q] > d else d
                out[b, p] = d

    @nb.njit(parallel=True, cache=True)
    def bilinear_delta_par(g, s, order, rank, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, out):
        per = (ho * wo + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        for item in prange(g.shape[0] * per):
            bilinear_delta_items(item, item + 1, g, s, order, rank, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0,
                                 wx1, scale, out)

    @nb.njit(inline="always")
    def dense_row(g_b, p, sq_b, scale, out):
        """Squared distances of token ``p`` to all: ``max((|x_p|^2 + |x_q|^2) - 2 <x_p, x_q>, 0) *
        scale`` with ``d_pp = 0``, the reference's expression on the same Gram row."""
        sp = sq_b[p]
        gp = g_b[p]
        for q in range(out.shape[0]):
            out[q] = max((sp + sq_b[q]) - _F2 * gp[q], _F0) * scale
        out[p] = 0.0

    @nb.njit(cache=True)
    def dense_density_items(i0, i1, g, sq, scale, kp1, ktau, out):
        n = g.shape[1]
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        row = np.empty(n, dtype=np.float32)
        best = np.empty(kp1, dtype=np.float32)
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                dense_row(g[b], p, sq[b], scale, row)
                best[:] = _INF
                for q0 in range(0, n, 64):
                    insert_block(best, row[q0:min(n, q0 + 64)])
                acc = _F0
                for j in range(kp1):
                    acc += best[j]
                out[b, p] = -acc / ktau

    @nb.njit(parallel=True, cache=True)
    def dense_density_par(g, sq, scale, kp1, ktau, out):
        per = (g.shape[1] + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        for item in prange(g.shape[0] * per):
            dense_density_items(item, item + 1, g, sq, scale, kp1, ktau, out)

    @nb.njit(cache=True)
    def dense_delta_items(i0, i1, g, sq, order, rank, scale, out):
        n = g.shape[1]
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        row = np.empty(n, dtype=np.float32)
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                dense_row(g[b], p, sq[b], scale, row)
                d = denser_min(row, order[b], rank[b, p])
                if rank[b, p] == 0:  # the densest token: its largest distance (its own 0 included)
                    d = _F0
                    for q in range(n):
                        d = row[q] if row[q] > d else d
                out[b, p] = d

    @nb.njit(parallel=True, cache=True)
    def dense_delta_par(g, sq, order, rank, scale, out):
        per = (g.shape[1] + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        for item in prange(g.shape[0] * per):
            dense_delta_items(item, item + 1, g, sq, order, rank, scale, out)

    #: name -> (serial loop over items, parallel launcher)
    KERNELS = {name: (globals()[f"{name}_items"], globals()[f"{name}_par"])
               for name in ("bilinear_diag", "bilinear_density", "bilinear_delta", "dense_density", "dense_delta")}



#: below this many distance pairs (``B x N x N``) per call the serial loop runs (no parallel launch)
PARALLEL_MIN_PAIRS = 1 << 21


def _kernel(name: str, n_items: int, pairs: int):
    """The kernel ``name`` as a callable on its arguments: the parallel launcher when PyTorch runs
    on several threads and the call has at least :data:`PARALLEL_MIN_PAIRS` pairs, else the
    serial loop over all ``n_items`` items."""
    if nb is None:
        raise RuntimeError("the CPU DPC kernels need numba (pip install numba)")
    items, par = KERNELS[name]
    threads = torch.get_num_threads()
    if threads > 1 and pairs >= PARALLEL_MIN_PAIRS:
        nb.set_num_threads(max(1, min(threads, nb.config.NUMBA_NUM_THREADS)))
        return par
    return lambda *args: items(0, n_items, *args)


def _items(b: int, n: int) -> int:
    return b * ((n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM)


@functools.lru_cache(maxsize=32)
def _taps_1d(size: int, factor: int, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 1-D interpolation ``size -> factor * size`` as two taps per output: ``(i0, i1, w0, w1)``.

    Taken from ``F.interpolate`` itself (a ``size x 1`` image of one-hot columns, float64), so the
    weights are exactly the ones the upsampling uses; an unused second tap has weight 0.
    """
    eye = torch.eye(size, dtype=torch.float64).reshape(size, 1, size, 1)
    kw = {"align_corners": False} if mode == "bilinear" else {}
    wmat = F.interpolate(eye, scale_factor=factor, mode=mode, **kw)[:, 0, :, 0].t()  # (f*size) x size
    val, idx = torch.topk(wmat, min(2, size), dim=1)
    if size == 1:
        val, idx = F.pad(val, (0, 1)), F.pad(idx, (0, 1))
    idx = torch.where(val > 0, idx, idx[:, :1])
    # the lower input index first: a fixed order of the two products
    swap = idx[:, 1] < idx[:, 0]
    idx = torch.where(swap[:, None], idx.flip(1), idx)
    val = torch.where(swap[:, None], val.flip(1), val)
    return (idx[:, 0].numpy().astype(np.int64), idx[:, 1].numpy().astype(np.int64),
            val[:, 0].numpy().astype(np.float32), val[:, 1].numpy().astype(np.float32))


def order_rank(log_rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens from the densest down (``B x N``: the reference's stable descending sort, ties to
    the lower index) and each token's place in that order (``B x N``), both int64."""
    order = torch.sort(torch.from_numpy(log_rho), dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    return order.numpy(), rank.numpy()


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().contiguous().numpy()


@torch.no_grad()
def bilinear_gram_dpc(gram: torch.Tensor, grid_size: tuple[int, int], factor: int, mode: str, k: int, tau: float,
                      scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log rho, delta)`` (``B x N`` float32, ``N = f^2 h w``) of the upsampled tokens whose
    low-resolution Gram matrix is ``gram`` (``B x m x m``, ``m = h w``, centred tokens); see the
    module doc. ``k`` nearest other tokens (clamped to ``N - 1``), temperature ``tau``."""
    h, w = (int(v) for v in grid_size)
    b, m, _ = gram.shape
    if m != h * w or gram.shape[2] != m:
        raise ValueError(f"Gram matrix {tuple(gram.shape)} does not belong to a {h} x {w} grid")
    ty0, ty1, wy0, wy1 = _taps_1d(h, int(factor), mode)
    tx0, tx1, wx0, wx1 = _taps_1d(w, int(factor), mode)
    ho, wo = len(ty0), len(tx0)
    n = ho * wo
    # the Gram matrix's columns mixed along x once per sample: B x m x (h * wo)
    gv = gram.detach().float().reshape(b, m, h, w)
    ix0, ix1 = torch.from_numpy(tx0), torch.from_numpy(tx1)
    gx = gv.index_select(3, ix0) * torch.from_numpy(wx0) + gv.index_select(3, ix1) * torch.from_numpy(wx1)
    g = _np(gx.reshape(b, m, -1))
    sc = np.float32(scale)
    s = np.empty((b, n), dtype=np.float32)
    pairs = b * n * n
    _kernel("bilinear_diag", b, pairs)(g, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, s)
    kk = min(int(k), n - 1)
    log_rho = np.zeros((b, n), dtype=np.float32)
    if kk > 0:
        _kernel("bilinear_density", _items(b, n), pairs)(g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1,
                                                         sc, kk + 1, np.float32(kk * float(tau)), log_rho)
    order, rank = order_rank(log_rho)
    delta_sq = np.empty((b, n), dtype=np.float32)
    _kernel("bilinear_delta", _items(b, n), pairs)(g, s, order, rank, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0,
                                                   wx1, sc, delta_sq)
    return torch.from_numpy(log_rho), torch.from_numpy(delta_sq).clamp_min_(0.0).sqrt_()


@torch.no_grad()
def gram_dpc(gram: torch.Tensor, sq: torch.Tensor, k: int, tau: float, scale: float = 1.0
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log rho, delta)`` (``B x N`` float32) of tokens with Gram matrix ``gram`` (``B x N x N``)
    and squared norms ``sq`` (``B x N``): the reference's distances, fused reductions."""
    b, n, _ = gram.shape
    g, q = _np(gram), _np(sq)
    sc = np.float32(scale)
    kk = min(int(k), n - 1)
    log_rho = np.zeros((b, n), dtype=np.float32)
    if kk > 0:
        _kernel("dense_density", _items(b, n), b * n * n)(g, q, sc, kk + 1, np.float32(kk * float(tau)), log_rho)
    delta_sq = np.empty((b, n), dtype=np.float32)
    _kernel("dense_delta", _items(b, n), b * n * n)(g, q, *order_rank(log_rho), sc, delta_sq)
    return torch.from_numpy(log_rho), torch.from_numpy(delta_sq).clamp_min_(0.0).sqrt_()
