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

**Plain tokens (LRB).** The distances come from the reference's own Gram matrix (one ``bmm``)
and squared norms, by the reference's expression; only the reductions run here.

**Reductions.** Density: the ``k + 1`` smallest distances of a row (its own 0 included) by
insertion into a sorted array of ``k + 1`` values, summed in ascending order. For the HRB the
window of grid rows around the token is inserted first (neighbouring upsampled tokens mix the same
low-resolution tokens, so the nearest usually lie there), then one vectorised count over the row
says whether any other token is within the bar. The row's *near tokens* (those within its
``(k+1)``-th smallest distance) are kept for the delta pass.

Delta: the distance to the nearest denser token, with the reference's tie rule ("``j`` is denser
than ``i`` iff ``log rho_j > log rho_i`` or (equal and ``j < i``)", a stable descending sort of
``log rho``). Every token outside a row's near tokens is farther than all of them, so when a
near token is denser, the nearest denser near token *is* the answer. Only the local density
peaks (55 of the 768 rows for random tokens at the quick preset's size) and rows whose near list
overflows (many exact ties) read their whole row again; the densest token takes its row's max.

Selection: asked for ``num_keep`` tokens, the same compiled call ends with the selection of
:func:`ftp_pose.models.dpc.select_tokens` (stable descending sort of ``log rho + log delta``,
ties to the lower index, then ascending), so a forward makes one compiled call per DPC and no
PyTorch work after it.

**Agreement with the reference.** Same formulas and tie rule; sums are rounded differently
(separable mixes instead of ``F.interpolate``, an ascending ``k + 1`` sum instead of ``topk``'s
sum, libm's ``logf`` instead of PyTorch's vectorised log in the score; the square root of
delta is correctly rounded here and may be 1 ulp off in PyTorch's vectorised one), so *near-ties*
(densities or scores within a few ulps) may flip. No fast-math flag is used. Threads: numba's,
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

__all__ = ["available", "bilinear_gram_dpc", "gram_dpc"]

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

    # Each pass is a serial loop over work items (``*_items(i0, i1, ...)``: rows of one sample,
    # ROWS_PER_ITEM at a time, scratch allocated once) and a parallel launcher over the same items
    # (``*_par``). A parallel launch costs about 0.1 ms here, more than the whole work of the quick
    # preset, so small problems and one-thread runs go through ``*_serial``: every pass in one
    # compiled call (one dispatch instead of five, no PyTorch work in between).

    @nb.njit(cache=True)
    def bilinear_xmix(gram, h, w, tx0, tx1, wx0, wx1):
        """The Gram matrix's columns mixed along x: ``B x m x m -> B x m x (h wo)``."""
        b, m = gram.shape[0], gram.shape[1]
        wo = tx0.shape[0]
        gx = np.empty((b, m, h * wo), dtype=np.float32)
        for bb in range(b):
            for a in range(m):
                for y in range(h):
                    for qx in range(wo):
                        gx[bb, a, y * wo + qx] = (gram[bb, a, y * w + tx0[qx]] * wx0[qx]
                                                  + gram[bb, a, y * w + tx1[qx]] * wx1[qx])
        return gx

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

    @nb.njit(cache=True)
    def bilinear_density_items(i0, i1, g, s, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, scale, kp1, ktau,
                               near_d, near_i, near_n, out):
        """``log rho`` of the rows in items ``[i0, i1)``; each row's near tokens (within its
        ``(k+1)``-th smallest distance: ``near_n`` of them, distances ``near_d``, indices
        ``near_i``, ``B x N x cap``) are kept for the delta pass."""
        n = ho * wo
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        t = np.empty(g.shape[2], dtype=np.float32)
        row = np.empty(n, dtype=np.float32)
        best = np.empty(kp1, dtype=np.float32)
        starts = np.arange(ho) * wo   # every grid row's block
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                mixed_row(g[b], p, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, t)
                dist_row(t, p, s[b], wo, ho, ty0, ty1, wy0, wy1, scale, row)
                # 1. the window of grid rows py - 1 .. py + 1 (own row first): neighbouring
                #    upsampled tokens mix the same low-res tokens, so the nearest usually lie here
                py = p // wo
                y0, y1 = max(py - 1, 0), min(py + 2, ho)
                best[:] = _INF
                insert_block(best, row[py * wo:(py + 1) * wo])
                if y0 < py:
                    insert_block(best, row[y0 * wo:py * wo])
                if py + 1 < y1:
                    insert_block(best, row[(py + 1) * wo:y1 * wo])
                # 2. one vectorised count over the whole row: a token within the bar outside the
                #    window? Then insert the other blocks and collect from all of them
                thr = best[kp1 - 1]
                if count_within(row, thr) > count_within(row[y0 * wo:y1 * wo], thr):
                    for qy in range(ho):
                        if qy < y0 or qy >= y1:
                            insert_block(best, row[qy * wo:(qy + 1) * wo])
                    near_n[b, p] = collect_near(row, best[kp1 - 1], starts, ho, wo, near_d[b, p], near_i[b, p])
                else:
                    near_n[b, p] = collect_near(row, thr, starts[y0:], 1, (y1 - y0) * wo, near_d[b, p], near_i[b, p])
                out[b, p] = finish_density(best, ktau)

    @nb.njit(cache=True)
    def bilinear_delta_items(i0, i1, g, s, rank, near_d, near_i, near_n, w, wo, ho, ty0, ty1, wy0, wy1, tx0, tx1,
                             wx0, wx1, scale, out):
        """Squared delta of the rows in items ``[i0, i1)``: from the near tokens, else the full row."""
        n = ho * wo
        per = (n + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
        t = np.empty(g.shape[2], dtype=np.float32)
        row = np.empty(n, dtype=np.float32)
        for item in range(i0, i1):
            b = item // per
            for p in range((item - b * per) * ROWS_PER_ITEM, min(n, (item - b * per + 1) * ROWS_PER_ITEM)):
                d = delta_from_near(near_d[b, p], near_i[b, p], near_n[b, p], rank[b], rank[b, p])
                if d < _F0:  # a local density peak (no denser near token) or an overflowing near list
                    mixed_row(g[b], p, w, wo, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, t)
                    dist_row(t, p, s[b], wo, ho, ty0, ty1, wy0, wy1, scale, row)
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
        g = bilinear_xmix(gram, h, w, tx0, tx1, wx0, wx1)
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


Result = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]


def _outputs(b: int, n: int, num_keep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.empty((b, n), dtype=np.float32), np.empty((b, n), dtype=np.float32),
            np.empty((b, max(int(num_keep), 0)), dtype=np.int64))


def _result(log_rho: np.ndarray, delta: np.ndarray, idx: np.ndarray, num_keep: int) -> Result:
    return (torch.from_numpy(log_rho), torch.from_numpy(delta),
            torch.from_numpy(idx) if num_keep > 0 else None)


@torch.no_grad()
def bilinear_gram_dpc(gram: torch.Tensor, grid_size: tuple[int, int], factor: int, mode: str, k: int, tau: float,
                      scale: float = 1.0, num_keep: int = 0) -> Result:
    """``(log rho, delta, kept)`` of the upsampled tokens whose low-resolution Gram matrix is
    ``gram`` (``B x m x m``, ``m = h w``, centred tokens); see the module doc. ``log rho`` and
    ``delta`` are ``B x N`` float32 (``N = f^2 h w``); ``kept`` (``B x num_keep`` int64,
    ascending, the selection of :func:`ftp_pose.models.dpc.select_tokens`) or ``None`` when
    ``num_keep`` is 0. ``k`` nearest other tokens (clamped to ``N - 1``), temperature ``tau``."""
    h, w = (int(v) for v in grid_size)
    b, m, _ = gram.shape
    if m != h * w or gram.shape[2] != m:
        raise ValueError(f"Gram matrix {tuple(gram.shape)} does not belong to a {h} x {w} grid")
    ty0, ty1, wy0, wy1 = _taps_1d(h, int(factor), mode)
    tx0, tx1, wx0, wx1 = _taps_1d(w, int(factor), mode)
    ho, wo = len(ty0), len(tx0)
    n = ho * wo
    kk = min(int(k), n - 1)
    sc, ktau = np.float32(scale), np.float32(kk * float(tau))
    gram_np = _np(gram)
    log_rho, delta, idx = _outputs(b, n, num_keep)
    if not _parallel(b * n * n):
        bilinear_dpc_serial(gram_np, h, w, ty0, ty1, wy0, wy1, tx0, tx1, wx0, wx1, sc, kk + 1, ktau, int(num_keep),
                            log_rho, delta, idx)
    else:
        g = bilinear_xmix(gram_np, h, w, tx0, tx1, wx0, wx1)
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


@torch.no_grad()
def gram_dpc(gram: torch.Tensor, sq: torch.Tensor, k: int, tau: float, scale: float = 1.0, num_keep: int = 0
             ) -> Result:
    """``(log rho, delta, kept)`` of tokens with Gram matrix ``gram`` (``B x N x N``) and squared
    norms ``sq`` (``B x N``): the reference's distances, fused reductions; ``kept`` as in
    :func:`bilinear_gram_dpc`."""
    b, n, _ = gram.shape
    g, q = _np(gram), _np(sq)
    kk = min(int(k), n - 1)
    sc, ktau = np.float32(scale), np.float32(kk * float(tau))
    log_rho, delta, idx = _outputs(b, n, num_keep)
    if not _parallel(b * n * n):
        dense_dpc_serial(g, q, sc, kk + 1, ktau, int(num_keep), log_rho, delta, idx)
    else:
        near_d, near_i, near_n = _near_buffers(b, n, kk + 1)
        dense_density_par(g, q, sc, kk + 1, ktau, near_d, near_i, near_n, log_rho)
        rank = np.empty((b, n), dtype=np.int32)
        rank_by_density(log_rho, rank)
        delta_sq = np.empty((b, n), dtype=np.float32)
        dense_delta_par(g, q, rank, near_d, near_i, near_n, sc, delta_sq)
        finish(log_rho, delta_sq, int(num_keep), delta, idx)
    return _result(log_rho, delta, idx, num_keep)
