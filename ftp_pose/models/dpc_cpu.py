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
``G = X X^T`` the ``m x m`` Gram matrix of the ``m = h w`` centred low-resolution tokens. Once
per sample, ``G W^T`` (``m x N``: each column is an upsampled token, mixed along x, then along
y) is formed; then for row ``p``::

    g_pq  = 4 rows of G W^T mixed by p's taps    (N values, one contiguous loop)
    d_pq  = max(s_p + s_q - 2 g_pq, 0) * scale,   d_pp = 0,   s_q = g_qq

so one distance costs 4 multiply-adds on contiguous memory (the issue's "4 taps") instead of
``C`` products. ``s_q`` is the diagonal of the same mixed Gram matrix, computed with the same
operations in the same order, so exact copies (the clamped border blocks of a bilinear
upsampling: equal rows of ``W``, hence equal rows and columns) get bitwise-equal distances and
densities, and the index tie rule decides between them, as in the reference.

**Plain tokens (LRB)**: ``d_pq = max(s_p + s_q - 2 G_pq, 0) * scale``, the reference's expression.

**The Gram matrix.** Up to :data:`GRAM_IN_LOOP_MAX` multiply-adds per sample (the quick preset's
two DPCs) the compiled call centres the tokens and forms ``G`` itself, with ``s`` its diagonal
(each entry sums its channel products in one order, so copies tie exactly): a forward then runs
no PyTorch operation for the selection, which matters more than FLOPs at these sizes (right after
the model's own work, each small PyTorch operation costs several times its isolated time).
Above it, PyTorch centres and forms ``G`` (one ``bmm``) and the squared norms are the
reference's.

**Reductions.** Density: the ``k + 1`` smallest distances of a row (its own 0 included) by
insertion into a sorted array of ``k + 1`` values, summed in ascending order. For the HRB a
bar comes first: the ``(k+1)``-th smallest distance to the token's 3 x 3 spatial neighbourhood
(neighbouring upsampled tokens mix the same low-resolution tokens, so it is tight), which is at
least the row's own. One vectorised count over the row says how many tokens lie within the bar;
they hold the ``k + 1`` nearest and are collected (from the window of grid rows around the token
when all are there) as the row's *near tokens*; a row with more than the list holds (many exact
ties) inserts its whole row instead.

Delta: the distance to the nearest denser token, with the reference's tie rule ("``j`` is denser
than ``i`` iff ``log rho_j > log rho_i`` or (equal and ``j < i``)", a stable descending sort of
``log rho``). A row's near tokens are all the tokens within a bar, so every other token is
farther than all of them: when a near token is denser, the nearest denser near token *is* the
answer. Only the local density peaks (54 of the 768 rows for random tokens at the quick
preset's size) and rows whose near list overflows (many exact ties) read their whole row
again; the densest token takes its row's max.

Selection: asked for ``num_keep`` tokens, the same compiled call ends with the selection of
:func:`ftp_pose.models.dpc.select_tokens` (stable descending sort of ``log rho + log delta``,
ties to the lower index, then ascending), so a forward makes one compiled call per DPC and no
PyTorch work after it.

**Agreement with the reference.** Same formulas and tie rule; sums are rounded differently
(the mixes of ``G W^T`` in another order than the reference's taps, at small sizes a Gram
matrix summed channel by channel instead of PyTorch's ``bmm``, an ascending ``k + 1`` sum
instead of ``topk``'s sum, libm's ``logf`` instead of PyTorch's vectorised log in the score;
the square root of delta is correctly rounded here and may be 1 ulp off in PyTorch's vectorised
one), so *near-ties* (densities or scores within a few ulps) may flip. No fast-math flag is used. Threads: numba's,
as many as ``torch.get_num_threads()``, for calls with at least :data:`PARALLEL_MIN_PAIRS`
distance pairs; smaller calls (the quick preset) and one-thread runs go through one serial
compiled call, since a parallel launch costs about 0.1 ms (and right after PyTorch's own
parallel work its OpenMP threads still spin on the other cores: measured, the parallel launch
then gained nothing on 2 cores).

numba is optional: :func:`available` says whether it imports here; :mod:`ftp_pose.models.dpc`
falls back to the reference without it (e.g. on the GPU machine, which uses Triton).
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch
import torch.nn.functional as F

from ftp_pose.models.dpc import Scores, centred_tokens

__all__ = ["available", "bilinear_dpc", "plain_dpc"]

#: rows per parallel work item (scratch buffers are allocated once per item)
ROWS_PER_ITEM = 32
#: room for a row's near tokens, per k + 1 (more only when many distances tie at the (k+1)-th)
NEAR_PER_K = 2


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
    def count_within(blk, thr):
        """How many entries of ``blk`` are ``<= thr`` (vectorised)."""
        cnt = 0
        for q in range(blk.shape[0]):
            cnt += blk[q] <= thr
        return cnt

    @nb.njit(inline="always")
    def insert_block(best, blk):
        """Insert the entries of ``blk`` that beat ``best``'s last (a vectorised count skips the
        block). Returns whether any entry is within the bar (``<=``: the block may hold near tokens)."""
        if count_within(blk, best[best.shape[0] - 1]) == 0:
            return False
        for q in range(blk.shape[0]):
            insert(best, blk[q])
        return True

    @nb.njit(inline="always")
    def collect_near(row, thr, starts, n_starts, bs, near_d, near_i):
        """The tokens of ``row`` within ``thr`` (its ``(k+1)``-th smallest distance) into ``near_d``
        / ``near_i``, read from the blocks ``row[s:s + bs]`` for ``s`` in ``starts[:n_starts]``:
        the blocks that had an entry within the bar when inserted (the bar only falls, so every
        near token lies in one of them). Returns how many, or -1 when more than fit (many ties at
        ``thr``: the delta pass then reads the whole row). Loops run over slices from 0 (a
        provably non-negative index vectorises)."""
        n, cap = row.shape[0], near_d.shape[0]
        c = 0
        for i in range(n_starts):
            q0 = starts[i]
            blk = row[q0:min(n, q0 + bs)]
            cnt = count_within(blk, thr)
            if cnt > 0:
                if c + cnt > cap:
                    return -1
                for q in range(blk.shape[0]):
                    if blk[q] <= thr:
                        near_d[c] = blk[q]
                        near_i[c] = q0 + q
                        c += 1
        return c

    @nb.njit(inline="always")
    def finish_density(best, ktau):
        """``log rho = -(sum of the k + 1 smallest distances, ascending) / (k tau)`` (0 if k = 0)."""
        acc = _F0
        for j in range(best.shape[0]):
            acc += best[j]
        return -acc / ktau if ktau > _F0 else _F0

    @nb.njit(inline="always")
    def delta_from_near(near_d, near_i, cnt, rank_b, rp):
        """The distance to the nearest denser token when one is among the row's near tokens (the
        ``cnt`` tokens within its ``(k+1)``-th smallest distance): every other token is farther
        than all of them, so the nearest denser token is among them. ``-1`` when none is (a local
        density peak) or the list overflowed (``cnt < 0``)."""
        best = -_F2
        for j in range(cnt):
            if rank_b[near_i[j]] < rp and (best < _F0 or near_d[j] < best):
                best = near_d[j]
        return best

    @nb.njit(inline="always")
    def delta_from_row(row, rank_b, rp):
        """Min of the full ``row`` over denser tokens (``rank < rp``: the reference's stable
        descending order of ``log rho``, ties to the lower index); the densest token (``rp == 0``)
        gets the row's max (its own 0 included)."""
        best = _BIG
        if rp == 0:
            best = _F0
            for q in range(row.shape[0]):
                best = row[q] if row[q] > best else best
            return best
        for q in range(row.shape[0]):
            x = row[q]
            best = x if (rank_b[q] < rp and x < best) else best
        return best

    @nb.njit(cache=True)
    def rank_by_density(log_rho, rank):
        """``rank[b, i]``: place of token ``i`` in the stable descending order of ``log_rho[b]``
        (ties to the lower index, as ``torch.sort(descending=True, stable=True)``)."""
        for b in range(log_rho.shape[0]):
            order = np.argsort(-log_rho[b], kind="mergesort")
            for j in range(order.shape[0]):
                rank[b, order[j]] = j

    @nb.njit(cache=True)
    def finish(log_rho, delta_sq, num_keep, delta, idx):
        """``delta = sqrt(max(delta_sq, 0))`` and, when ``num_keep > 0``, ``idx[b]``: the
        ``num_keep`` tokens of highest ``log rho + log delta`` in ascending order; a stable sort,
        so equal scores go to the lower index (as :func:`ftp_pose.models.dpc.select_tokens`)."""
        n = log_rho.shape[1]
        key = np.empty(n, dtype=np.float32)
        for b in range(log_rho.shape[0]):
            for i in range(n):
                d = np.sqrt(max(delta_sq[b, i], _F0))
                delta[b, i] = d
                key[i] = -(log_rho[b, i] + np.log(d))   # ascending key = descending score
            if num_keep > 0:
                idx[b] = np.sort(np.argsort(key, kind="mergesort")[:num_keep])

    @nb.njit(inline="always")
    def taps(p, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1):
        """The 4 low-res tokens of upsampled token ``p`` (row-major) and the two weights per axis."""
        py = p // wo
        px = p - py * wo
        return (ty0[py] * w + tx0[px], ty0[py] * w + tx1[px], ty1[py] * w + tx0[px], ty1[py] * w + tx1[px],
                wy0[py], wy1[py], wx0[px], wx1[px])

    @nb.njit(inline="always")
    def mix4(c00, c01, c10, c11, g00, g01, g10, g11):
        """The 4-tap mix of one upsampled distance's Gram entries (one fixed order of sums)."""
        return (c00 * g00 + c01 * g01) + (c10 * g10 + c11 * g11)

    @nb.njit(inline="always")
    def dist_row(gw_b, p, s_b, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, out):
        """Squared distances of row ``p`` to all ``N`` tokens: 4 rows of ``G W^T`` (``gw_b``,
        ``m x N``) mixed by ``p``'s taps, one contiguous loop over the row (see module doc)."""
        a00, a01, a10, a11, u0, u1, v0, v1 = taps(p, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1)
        c00, c01, c10, c11 = u0 * v0, u0 * v1, u1 * v0, u1 * v1
        r00, r01, r10, r11 = gw_b[a00], gw_b[a01], gw_b[a10], gw_b[a11]
        sp = s_b[p]
        for q in range(out.shape[0]):
            out[q] = max((sp + s_b[q]) - _F2 * mix4(c00, c01, c10, c11, r00[q], r01[q], r10[q], r11[q]), _F0) * scale
        out[p] = 0.0

    # Each pass is a serial loop over work items (``*_items(i0, i1, ...)``: rows of one sample,
    # ROWS_PER_ITEM at a time, scratch allocated once) and a parallel launcher over the same items
    # (``*_par``). A parallel launch costs about 0.1 ms here, more than the whole work of the quick
    # preset, so small problems and one-thread runs go through ``*_serial``: every pass in one
    # compiled call (one dispatch instead of five, no PyTorch work in between).

    @nb.njit(cache=True)
    def bilinear_colmix(gram, h, w, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1):
        """``G W^T``: the Gram matrix's columns mixed along x, then along y: ``B x m x m -> B x m x N``
        (each column is an upsampled token; equal rows of ``W`` give bitwise-equal columns)."""
        b, m = gram.shape[0], gram.shape[1]
        ho, wo = ty0.shape[0], tx0.shape[0]
        gx = np.empty(h * wo, dtype=np.float32)
        gw = np.empty((b, m, ho * wo), dtype=np.float32)
        for bb in range(b):
            for a in range(m):
                ga = gram[bb, a]
                for y in range(h):
                    gy = ga[y * w:(y + 1) * w]
                    oo = gx[y * wo:(y + 1) * wo]
                    for qx in range(wo):
                        oo[qx] = gy[tx0[qx]] * wx0[qx] + gy[tx1[qx]] * wx1[qx]
                oa = gw[bb, a]
                for qy in range(ho):
                    c0, c1 = wy0[qy], wy1[qy]
                    t0 = gx[ty0[qy] * wo:ty0[qy] * wo + wo]
                    t1 = gx[ty1[qy] * wo:ty1[qy] * wo + wo]
                    oo = oa[qy * wo:(qy + 1) * wo]
                    for qx in range(wo):
                        oo[qx] = c0 * t0[qx] + c1 * t1[qx]
        return gw

    @nb.njit(cache=True)
    def bilinear_diag_items(i0, i1, gw, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, s):
        """``s[b, q] = (W G W^T)[q, q]`` for samples ``b`` in ``[i0, i1)``, by ``dist_row``'s mix of
        column ``q`` (the same operations in the same order as every other entry of the row)."""
        n = ho * wo
        for b in range(i0, i1):
            g = gw[b]
            for q in range(n):
                a00, a01, a10, a11, u0, u1, v0, v1 = taps(q, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1)
                s[b, q] = mix4(u0 * v0, u0 * v1, u1 * v0, u1 * v1, g[a00, q], g[a01, q], g[a10, q], g[a11, q])

    @nb.njit(cache=True)
    def bilinear_density_items(i0, i1, g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, kp1, ktau,
                               near_d, near_i, near_n, out):
        """``log rho`` of the rows in items ``[i0, i1)``; each row's near tokens (within its
        ``(k+1)``-th smallest distance: ``near_n`` of them, distances ``near_d``, indices
        ``near_i``, ``B x N x cap``) are kept for the delta pass."""
        n = ho * wo
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        row = np.empty(n, dtype=np.float32)
        best = np.empty(kp1, dtype=np.float32)
        starts = np.arange(ho) * wo   # every grid row's block
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                dist_row(g[b], p, s[b], w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, row)
                # 1. a bar from the 3 x 3 spatial neighbourhood (own distance 0 included): the
                #    (k+1)-th smallest of these is >= the row's (k+1)-th smallest distance
                py = p // wo
                px = p - py * wo
                best[:] = _INF
                for qy in range(max(py - 1, 0), min(py + 2, ho)):
                    for qx in range(max(px - 1, 0), min(px + 2, wo)):
                        insert(best, row[qy * wo + qx])
                # 2. the tokens within that bar (one vectorised count over the row, then collected from
                #    the window of grid rows py - 1 .. py + 1 when all lie there) hold the k + 1
                #    nearest; they are the row's near tokens (every other token is farther)
                thr = best[kp1 - 1]
                cnt = count_within(row, thr)
                if cnt <= near_d.shape[2]:
                    y0, y1 = max(py - 1, 0), min(py + 2, ho)
                    if count_within(row[y0 * wo:y1 * wo], thr) == cnt:  # all in the window of grid rows
                        cnt = collect_near(row, thr, starts[y0:], 1, (y1 - y0) * wo, near_d[b, p], near_i[b, p])
                    else:
                        cnt = collect_near(row, thr, starts, ho, wo, near_d[b, p], near_i[b, p])
                else:
                    cnt = -1
                best[:] = _INF
                if cnt >= 0:
                    for j in range(cnt):
                        insert(best, near_d[b, p, j])
                else:  # more within the bar than the list holds (many ties): insert the whole row
                    for qy in range(ho):
                        insert_block(best, row[qy * wo:(qy + 1) * wo])
                    cnt = collect_near(row, best[kp1 - 1], starts, ho, wo, near_d[b, p], near_i[b, p])
                near_n[b, p] = cnt
                out[b, p] = finish_density(best, ktau)

    @nb.njit(cache=True)
    def bilinear_delta_items(i0, i1, g, s, rank, near_d, near_i, near_n, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1,
                             wx0, wx1, scale, out):
        """Squared delta of the rows in items ``[i0, i1)``: from the near tokens, else the full row."""
        n = ho * wo
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        row = np.empty(n, dtype=np.float32)
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                d = delta_from_near(near_d[b, p], near_i[b, p], near_n[b, p], rank[b], rank[b, p])
                if d < _F0:  # a local density peak (no denser near token) or an overflowing near list
                    dist_row(g[b], p, s[b], w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, row)
                    d = delta_from_row(row, rank[b], rank[b, p])
                out[b, p] = d

    @nb.njit(parallel=True, cache=True)
    def bilinear_density_par(g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, kp1, ktau, near_d,
                             near_i, near_n, out):
        per = (ho * wo + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        for item in prange(g.shape[0] * per):
            bilinear_density_items(item, item + 1, g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale,
                                   kp1, ktau, near_d, near_i, near_n, out)

    @nb.njit(parallel=True, cache=True)
    def bilinear_delta_par(g, s, rank, near_d, near_i, near_n, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1,
                           scale, out):
        per = (ho * wo + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        for item in prange(g.shape[0] * per):
            bilinear_delta_items(item, item + 1, g, s, rank, near_d, near_i, near_n, w, wo, ho, ty0, ty1, wy0, wy1,
                                 tx0, tx1, wx0, wx1, scale, out)

    @nb.njit(cache=True)
    def bilinear_dpc_serial(gram, h, w, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, kp1, ktau, num_keep,
                            log_rho, delta, idx):
        """All passes of the HRB DPC in one call (x-mix, diagonal, density, rank, delta, selection)."""
        b = gram.shape[0]
        ho, wo = ty0.shape[0], tx0.shape[0]
        n = ho * wo
        items = b * ((n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM)
        g = bilinear_colmix(gram, h, w, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1)
        s = np.empty((b, n), dtype=np.float32)
        bilinear_diag_items(0, b, g, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, s)
        near_d = np.empty((b, n, NEAR_PER_K * kp1), dtype=np.float32)
        near_i = np.empty((b, n, NEAR_PER_K * kp1), dtype=np.int32)
        near_n = np.empty((b, n), dtype=np.int32)
        bilinear_density_items(0, items, g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, kp1, ktau,
                               near_d, near_i, near_n, log_rho)
        rank = np.empty((b, n), dtype=np.int32)
        rank_by_density(log_rho, rank)
        delta_sq = np.empty((b, n), dtype=np.float32)
        bilinear_delta_items(0, items, g, s, rank, near_d, near_i, near_n, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1,
                             wx0, wx1, scale, delta_sq)
        finish(log_rho, delta_sq, num_keep, delta, idx)

    @nb.njit(cache=True)
    def centred_gram(x, g, sq):
        """``g[b] = X X^T`` of the tokens ``x[b]`` (``B x N x C``) centred over the tokens (mean in
        float64), ``sq[b]`` its diagonal. Each entry sums its ``C`` products in channel order, so
        ``g`` is symmetric bitwise and equal tokens get equal rows (exact copies tie)."""
        b, n, c = x.shape
        xt = np.empty((c, n), dtype=np.float32)
        for bb in range(b):
            xb = x[bb]
            for cc in range(c):
                acc = 0.0
                for i in range(n):
                    acc += xb[i, cc]
                mu = np.float32(acc / n)
                col = xt[cc]
                for i in range(n):
                    col[i] = xb[i, cc] - mu
            gb = g[bb]
            for i in range(n):   # the lower triangle, one contiguous row at a time
                gi = gb[i, :i + 1]
                gi[:] = _F0
                for cc in range(c):
                    xi = xt[cc, i]
                    col = xt[cc, :i + 1]
                    for j in range(i + 1):
                        gi[j] += xi * col[j]
            for i in range(n):
                for j in range(i + 1, n):
                    gb[i, j] = gb[j, i]
                sq[bb, i] = gb[i, i]

    @nb.njit(cache=True)
    def bilinear_dpc_tokens_serial(x, h, w, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, kp1, ktau, num_keep,
                                   log_rho, delta, idx):
        """:func:`bilinear_dpc_serial` from the low-resolution tokens ``x`` (``B x m x C``)."""
        b, m = x.shape[0], x.shape[1]
        g = np.empty((b, m, m), dtype=np.float32)
        centred_gram(x, g, np.empty((b, m), dtype=np.float32))
        bilinear_dpc_serial(g, h, w, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, kp1, ktau, num_keep, log_rho,
                            delta, idx)

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
    def dense_density_items(i0, i1, g, sq, scale, kp1, ktau, near_d, near_i, near_n, out):
        n = g.shape[1]
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        row = np.empty(n, dtype=np.float32)
        best = np.empty(kp1, dtype=np.float32)
        starts = np.empty((n + 63) // 64, dtype=np.int64)
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                dense_row(g[b], p, sq[b], scale, row)
                best[:] = _INF
                hits = 0
                for q0 in range(0, n, 64):
                    if insert_block(best, row[q0:min(n, q0 + 64)]):
                        starts[hits] = q0
                        hits += 1
                out[b, p] = finish_density(best, ktau)
                near_n[b, p] = collect_near(row, best[kp1 - 1], starts, hits, 64, near_d[b, p], near_i[b, p])

    @nb.njit(cache=True)
    def dense_delta_items(i0, i1, g, sq, rank, near_d, near_i, near_n, scale, out):
        n = g.shape[1]
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        row = np.empty(n, dtype=np.float32)
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                d = delta_from_near(near_d[b, p], near_i[b, p], near_n[b, p], rank[b], rank[b, p])
                if d < _F0:  # a local density peak (no denser near token) or an overflowing near list
                    dense_row(g[b], p, sq[b], scale, row)
                    d = delta_from_row(row, rank[b], rank[b, p])
                out[b, p] = d

    @nb.njit(parallel=True, cache=True)
    def dense_density_par(g, sq, scale, kp1, ktau, near_d, near_i, near_n, out):
        per = (g.shape[1] + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        for item in prange(g.shape[0] * per):
            dense_density_items(item, item + 1, g, sq, scale, kp1, ktau, near_d, near_i, near_n, out)

    @nb.njit(parallel=True, cache=True)
    def dense_delta_par(g, sq, rank, near_d, near_i, near_n, scale, out):
        per = (g.shape[1] + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        for item in prange(g.shape[0] * per):
            dense_delta_items(item, item + 1, g, sq, rank, near_d, near_i, near_n, scale, out)

    @nb.njit(cache=True)
    def dense_dpc_serial(g, sq, scale, kp1, ktau, num_keep, log_rho, delta, idx):
        """All passes of the plain DPC in one call (density, rank, delta, selection)."""
        b, n = g.shape[0], g.shape[1]
        items = b * ((n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM)
        near_d = np.empty((b, n, NEAR_PER_K * kp1), dtype=np.float32)
        near_i = np.empty((b, n, NEAR_PER_K * kp1), dtype=np.int32)
        near_n = np.empty((b, n), dtype=np.int32)
        dense_density_items(0, items, g, sq, scale, kp1, ktau, near_d, near_i, near_n, log_rho)
        rank = np.empty((b, n), dtype=np.int32)
        rank_by_density(log_rho, rank)
        delta_sq = np.empty((b, n), dtype=np.float32)
        dense_delta_items(0, items, g, sq, rank, near_d, near_i, near_n, scale, delta_sq)
        finish(log_rho, delta_sq, num_keep, delta, idx)

    @nb.njit(cache=True)
    def dense_dpc_tokens_serial(x, scale, kp1, ktau, num_keep, log_rho, delta, idx):
        """:func:`dense_dpc_serial` from the tokens ``x`` (``B x N x C``)."""
        b, n = x.shape[0], x.shape[1]
        g = np.empty((b, n, n), dtype=np.float32)
        sq = np.empty((b, n), dtype=np.float32)
        centred_gram(x, g, sq)
        dense_dpc_serial(g, sq, scale, kp1, ktau, num_keep, log_rho, delta, idx)


#: below this many distance pairs (``B x N x N``) per call the serial loop runs (no parallel launch)
PARALLEL_MIN_PAIRS = 1 << 21


def _parallel(pairs: int) -> bool:
    """Whether a call with ``pairs`` distance pairs runs on numba's threads: only when PyTorch runs
    on several threads and the call has at least :data:`PARALLEL_MIN_PAIRS` pairs (then the thread
    count is set to PyTorch's)."""
    if nb is None:
        raise RuntimeError("the CPU DPC kernels need numba (pip install numba)")
    threads = torch.get_num_threads()
    if threads > 1 and pairs >= PARALLEL_MIN_PAIRS:
        nb.set_num_threads(max(1, min(threads, nb.config.NUMBA_NUM_THREADS)))
        return True
    return False


def _near_buffers(b: int, n: int, kp1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's near tokens for the delta pass: distances, indices (``B x N x cap``), counts."""
    cap = NEAR_PER_K * kp1
    return (np.empty((b, n, cap), dtype=np.float32), np.empty((b, n, cap), dtype=np.int32),
            np.empty((b, n), dtype=np.int32))


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


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().contiguous().numpy()


def _outputs(b: int, n: int, num_keep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.empty((b, n), dtype=np.float32), np.empty((b, n), dtype=np.float32),
            np.empty((b, max(int(num_keep), 0)), dtype=np.int64))


def _result(log_rho: np.ndarray, delta: np.ndarray, idx: np.ndarray, num_keep: int) -> Scores:
    return (torch.from_numpy(log_rho), torch.from_numpy(delta),
            torch.from_numpy(idx) if num_keep > 0 else None)


#: per-sample multiply-adds of the Gram matrix (``N x N x C``) up to which the compiled call centres
#: the tokens and forms it itself (no PyTorch operation at all); above, PyTorch does (one ``bmm``)
GRAM_IN_LOOP_MAX = 1 << 22


def _gram_in_loop(x: torch.Tensor) -> bool:
    """Whether the compiled call forms the Gram matrix of ``x`` (``B x N x C``) itself."""
    _, n, c = x.shape
    return n * n * c <= GRAM_IN_LOOP_MAX


def _centred_gram(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(G, sq)`` of the tokens ``x`` (``B x N x C``) centred over the tokens: by
    :func:`centred_gram` up to :data:`GRAM_IN_LOOP_MAX`, else by PyTorch (``bmm``, and the squared
    norms by the reference's expression)."""
    if _gram_in_loop(x):
        b, n, _ = x.shape
        g, sq = np.empty((b, n, n), dtype=np.float32), np.empty((b, n), dtype=np.float32)
        centred_gram(_np(x), g, sq)
        return g, sq
    xf = centred_tokens(x)
    return _np(torch.bmm(xf, xf.transpose(1, 2))), _np((xf * xf).sum(-1))


def bilinear_dpc(low: torch.Tensor, grid_size: tuple[int, int], factor: int, mode: str, k: int, tau: float,
                 scale: float = 1.0, num_keep: int = 0) -> Scores:
    """``(log rho, delta, kept)`` of the ``factor``-times upsampled tokens of ``low`` (``B x m x
    C``, ``m = h w``; see the module doc). ``log rho`` and ``delta`` are ``B x N`` float32
    (``N = f^2 h w``); ``kept`` (``B x num_keep`` int64, ascending, the selection of
    :func:`ftp_pose.models.dpc.select_tokens`) or ``None`` when ``num_keep`` is 0. ``k`` nearest
    other tokens (clamped to ``N - 1``), temperature ``tau``."""
    h, w = (int(v) for v in grid_size)
    b, m, _ = low.shape
    if m != h * w:
        raise ValueError(f"{m} tokens do not form a {h} x {w} grid")
    ty0, ty1, wy0, wy1 = _taps_1d(h, int(factor), mode)
    tx0, tx1, wx0, wx1 = _taps_1d(w, int(factor), mode)
    ho, wo = len(ty0), len(tx0)
    n = ho * wo
    kk = min(int(k), n - 1)
    sc, ktau = np.float32(scale), np.float32(kk * float(tau))
    log_rho, delta, idx = _outputs(b, n, num_keep)
    if not _parallel(b * n * n):
        if _gram_in_loop(low):   # one compiled call from the tokens
            bilinear_dpc_tokens_serial(_np(low), h, w, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, sc, kk + 1, ktau,
                                       int(num_keep), log_rho, delta, idx)
        else:
            bilinear_dpc_serial(_centred_gram(low)[0], h, w, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, sc, kk + 1,
                                ktau, int(num_keep), log_rho, delta, idx)
    else:
        g = bilinear_colmix(_centred_gram(low)[0], h, w, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1)
        s = np.empty((b, n), dtype=np.float32)
        bilinear_diag_items(0, b, g, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, s)
        near_d, near_i, near_n = _near_buffers(b, n, kk + 1)
        bilinear_density_par(g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, sc, kk + 1, ktau, near_d, near_i,
                             near_n, log_rho)
        rank = np.empty((b, n), dtype=np.int32)
        rank_by_density(log_rho, rank)
        delta_sq = np.empty((b, n), dtype=np.float32)
        bilinear_delta_par(g, s, rank, near_d, near_i, near_n, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, sc,
                           delta_sq)
        finish(log_rho, delta_sq, int(num_keep), delta, idx)
    return _result(log_rho, delta, idx, num_keep)


def plain_dpc(x: torch.Tensor, k: int, tau: float, scale: float = 1.0, num_keep: int = 0) -> Scores:
    """``(log rho, delta, kept)`` of the tokens ``x`` (``B x N x C``), as :func:`bilinear_dpc`."""
    b, n, _ = x.shape
    kk = min(int(k), n - 1)
    sc, ktau = np.float32(scale), np.float32(kk * float(tau))
    log_rho, delta, idx = _outputs(b, n, num_keep)
    if not _parallel(b * n * n):
        if _gram_in_loop(x):   # one compiled call from the tokens
            dense_dpc_tokens_serial(_np(x), sc, kk + 1, ktau, int(num_keep), log_rho, delta, idx)
        else:
            dense_dpc_serial(*_centred_gram(x), sc, kk + 1, ktau, int(num_keep), log_rho, delta, idx)
    else:
        g, q = _centred_gram(x)
        near_d, near_i, near_n = _near_buffers(b, n, kk + 1)
        dense_density_par(g, q, sc, kk + 1, ktau, near_d, near_i, near_n, log_rho)
        rank = np.empty((b, n), dtype=np.int32)
        rank_by_density(log_rho, rank)
        delta_sq = np.empty((b, n), dtype=np.float32)
        dense_delta_par(g, q, rank, near_d, near_i, near_n, sc, delta_sq)
        finish(log_rho, delta_sq, int(num_keep), delta, idx)
    return _result(log_rho, delta, idx, num_keep)
