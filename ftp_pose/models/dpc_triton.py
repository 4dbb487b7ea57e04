"""DPC-KNN density and delta by a fused Triton kernel that streams distance tiles (GPU path).

The reference (:mod:`ftp_pose.models.dpc`) builds ``B x R x N`` blocks of squared distances and
runs ``topk``, ``sort`` and a masked ``min`` over them. Here each program owns ``BLOCK_M`` rows
and streams ``BLOCK_M x BLOCK_N`` distance tiles through registers, FAISS-style: nothing of
size ``N x N`` is written to memory.

**Distances as a mixed Gram matrix.** Both uses of DPC are written as::

    g_ij = sum_t weight[j, t] * A[b, i, index[j, t]]      (t < 4)
    s_i  = g_ii,    d_ij = max(s_i + s_j - 2 g_ij, 0) * scale,    d_ii = 0

* HRB (3072 upsampled tokens): ``A = W G`` (``B x N x m``, ``G`` the ``m x m`` Gram matrix of
  the ``m = 192`` centred low-resolution tokens, ``W`` the ``N x m`` bilinear matrix of
  :mod:`ftp_pose.models.upsample`), ``(index, weight)`` the <= 4 non-zeros of each row of
  ``W``. So ``g = W G W^T``, and one distance costs 4 gathered loads and 4 multiply-adds
  instead of ``C = 768`` products (or 192 for a dense ``A W^T`` tile). This uses the
  structure the issue points at (each HR token is a fixed mix of <= 4 low-res tokens) with
  one cheap cuBLAS product for ``W G``; a dense tiled ``tl.dot`` would have needed fp32
  (not tf32) products to keep the reference's selection, i.e. CUDA-core FMAs, 48x more work.
* Plain tokens (LRB, 576 tokens): ``A = X X^T`` (cuBLAS) and the identity mix
  (``index[j] = (j, 0, 0, 0)``, ``weight[j] = (1, 0, 0, 0)``). This stores a ``B x N x N``
  Gram matrix (small for N = 576) but none of the reference's ``N x N`` passes.

**Kernels.** ``_diag``: ``s``. ``_density``: per row, the ``k + 1`` smallest distances of the
row (its own 0 included), kept in a ``BLOCK_M x KP`` register array; each tile gives up its
``k + 1`` smallest candidates (min / argmin / mask), which replace the current largest (a
tile none of whose rows beats its current ``(k+1)``-th smallest is skipped; tiles are scanned
from the row tile's own neighbourhood on, so that happens early). The
kept values are summed in ascending order, so equal multisets give bitwise-equal densities.
``_delta``: per row, the min distance over denser tokens with the reference's tie rule
("``j`` denser than ``i`` iff ``log rho_j > log rho_i`` or (equal and ``j < i``)"), evaluated
directly on ``log rho`` (no sort), and the max distance of the row; the densest token (no
denser one) takes the max.

**Agreement with the reference.** The same formulas, the tie rule, and selection by a stable
sort of ``log rho + log delta`` (done by the caller) keep the same tokens, except where float
rounding differs: the kernel's sums (4-term mixes, possibly contracted to FMAs, ascending
``k + 1`` sum) are not bitwise the reference's matmul / ``topk`` sums, so *exact near-ties*
(two densities or scores within a few ulps) may flip. Exact duplicate tokens (equal rows of
``A`` and of the mix) get bitwise-equal distances and densities, so the index tie rule
decides, as in the reference.

The host side has no syncs and static shapes (CUDA-graph friendly). Under ``TRITON_INTERPRET=1``
(set before triton is imported) the kernels run on CPU tensors; the tests use that.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["mixed_gram_dpc", "identity_mix"]


@triton.jit
def _mix_tile(a_base, idx_ptr, w_ptr, rows, cols, rmask, cmask, stride_ai,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, NMIX: tl.constexpr):
    """``g[i, j] = sum_t w[j, t] * A[i, idx[j, t]]`` for a ``rows x cols`` tile."""
    g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    m2 = rmask[:, None] & cmask[None, :]
    for t in tl.static_range(NMIX):
        jj = tl.load(idx_ptr + cols * 4 + t, mask=cmask, other=0)
        wt = tl.load(w_ptr + cols * 4 + t, mask=cmask, other=0.0)
        a = tl.load(a_base + rows[:, None] * stride_ai + jj[None, :], mask=m2, other=0.0)
        g += a * wt[None, :]
    return g


@triton.jit
def _dist_tile(a_base, idx_ptr, w_ptr, s_base, rows, cols, rmask, cmask, s_i, stride_ai, scale,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, NMIX: tl.constexpr):
    """Squared distances of a tile, ``d_ii = 0`` exactly."""
    s_j = tl.load(s_base + cols, mask=cmask, other=0.0)
    g = _mix_tile(a_base, idx_ptr, w_ptr, rows, cols, rmask, cmask, stride_ai, BLOCK_M, BLOCK_N, NMIX)
    d = tl.maximum((s_i[:, None] + s_j[None, :]) - 2.0 * g, 0.0) * scale
    return tl.where(rows[:, None] == cols[None, :], 0.0, d)


@triton.jit
def _diag(a_ptr, idx_ptr, w_ptr, s_ptr, N, stride_ab, stride_ai, BLOCK: tl.constexpr, NMIX: tl.constexpr):
    b = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    rmask = rows < N
    a_base = a_ptr + b.to(tl.int64) * stride_ab  # B x N x m may exceed 2^31 elements
    s = tl.zeros((BLOCK,), dtype=tl.float32)
    for t in tl.static_range(NMIX):
        jj = tl.load(idx_ptr + rows * 4 + t, mask=rmask, other=0)
        wt = tl.load(w_ptr + rows * 4 + t, mask=rmask, other=0.0)
        s += tl.load(a_base + rows * stride_ai + jj, mask=rmask, other=0.0) * wt
    tl.store(s_ptr + b * N + rows, s, mask=rmask)


@triton.jit
def _density(a_ptr, idx_ptr, w_ptr, s_ptr, out_ptr, N, stride_ab, stride_ai, scale, ktau,
             K1: tl.constexpr, KP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
             NMIX: tl.constexpr):
    b = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = rows < N
    a_base = a_ptr + b.to(tl.int64) * stride_ab  # B x N x m may exceed 2^31 elements
    s_base = s_ptr + b * N
    s_i = tl.load(s_base + rows, mask=rmask, other=0.0)
    slot = tl.arange(0, KP)
    # the K1 smallest so far (unsorted); slots >= K1 hold -inf and are never replaced or summed
    best = tl.where(slot[None, :] < K1, tl.full((BLOCK_M, KP), float("inf"), tl.float32), float("-inf"))
    # scan the column tiles starting just before the row tile's own: spatial neighbours (the
    # likely nearest tokens) come first, so later tiles are mostly skipped; the result does not
    # depend on the order (the k + 1 smallest values form one multiset)
    num_tiles = tl.cdiv(N, BLOCK_N)
    first = (tl.program_id(1) * BLOCK_M) // BLOCK_N + num_tiles - 1
    for it in range(0, num_tiles):
        start = ((first + it) % num_tiles) * BLOCK_N
        cols = start + tl.arange(0, BLOCK_N)
        cmask = cols < N
        d = _dist_tile(a_base, idx_ptr, w_ptr, s_base, rows, cols, rmask, cmask, s_i, stride_ai, scale,
                       BLOCK_M, BLOCK_N, NMIX)
        d = tl.where(cmask[None, :], d, float("inf"))
        # skip the extraction when no row of the tile has a candidate below its current worst
        if tl.max((tl.min(d, axis=1) < tl.max(best, axis=1)).to(tl.int32), axis=0) > 0:
            for _ in tl.static_range(K1):
                v = tl.min(d, axis=1)
                d = tl.where(cols[None, :] == (start + tl.argmin(d, axis=1))[:, None], float("inf"), d)
                worst = tl.max(best, axis=1)
                wslot = tl.argmax(best, axis=1)
                put = (slot[None, :] == wslot[:, None]) & (v < worst)[:, None]
                best = tl.where(put, v[:, None], best)
    # ascending sum of the K1 kept values: equal multisets give equal sums
    total = tl.zeros((BLOCK_M,), dtype=tl.float32)
    rest = tl.where(slot[None, :] < K1, best, float("inf"))
    for _ in tl.static_range(K1):
        v = tl.min(rest, axis=1)
        total += v
        rest = tl.where(slot[None, :] == tl.argmin(rest, axis=1)[:, None], float("inf"), rest)
    tl.store(out_ptr + b * N + rows, -total / ktau, mask=rmask)


@triton.jit
def _delta(a_ptr, idx_ptr, w_ptr, s_ptr, lr_ptr, out_ptr, N, stride_ab, stride_ai, scale,
           BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, NMIX: tl.constexpr):
    b = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = rows < N
    a_base = a_ptr + b.to(tl.int64) * stride_ab  # B x N x m may exceed 2^31 elements
    s_base = s_ptr + b * N
    s_i = tl.load(s_base + rows, mask=rmask, other=0.0)
    lr_i = tl.load(lr_ptr + b * N + rows, mask=rmask, other=0.0)
    dmin = tl.full((BLOCK_M,), float("inf"), tl.float32)
    dmax = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for start in range(0, N, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        cmask = cols < N
        d = _dist_tile(a_base, idx_ptr, w_ptr, s_base, rows, cols, rmask, cmask, s_i, stride_ai, scale,
                       BLOCK_M, BLOCK_N, NMIX)
        lr_j = tl.load(lr_ptr + b * N + cols, mask=cmask, other=float("-inf"))
        denser = (lr_j[None, :] > lr_i[:, None]) | ((lr_j[None, :] == lr_i[:, None]) & (cols[None, :] < rows[:, None]))
        dmin = tl.minimum(dmin, tl.min(tl.where(denser & cmask[None, :], d, float("inf")), axis=1))
        dmax = tl.maximum(dmax, tl.max(tl.where(cmask[None, :], d, 0.0), axis=1))
    tl.store(out_ptr + b * N + rows, tl.where(dmin == float("inf"), dmax, dmin), mask=rmask)


_IDENTITY: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}


def identity_mix(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(index, weight)`` (``N x 4``) of the identity map, cached per size and device."""
    key = (n, str(device))
    if key not in _IDENTITY:
        idx = torch.zeros(n, 4, dtype=torch.int32, device=device)
        idx[:, 0] = torch.arange(n, dtype=torch.int32, device=device)
        w = torch.zeros(n, 4, dtype=torch.float32, device=device)
        w[:, 0] = 1.0
        _IDENTITY[key] = (idx, w)
    return _IDENTITY[key]


def _block(n: int, cap: int) -> int:
    return max(16, min(cap, triton.next_power_of_2(n)))


@torch.no_grad()
def mixed_gram_dpc(a: torch.Tensor, index: torch.Tensor, weight: torch.Tensor, k: int, tau: float,
                   scale: float = 1.0, block_m: int = 16, block_n: int = 64, num_warps: int = 4,
                   num_mix: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log rho, delta)`` (``B x N`` float32) for the distances defined by ``A`` (``B x N x m``,
    float32) and the mix ``(index, weight)`` (``N x 4``, int32 / float32), see the module doc.

    ``k`` nearest other tokens (clamped to ``N - 1``), temperature ``tau``, distance ``scale``.
    ``num_mix``: slots of the mix in use (1 for the identity and nearest, 4 for bilinear).
    Tiles ``block_m x block_n``: 16 x 64 with 4 warps compiles for sm_90 without register spills
    (64 x 64 with 4 warps spills; ``python -m ftp_pose gpu-check`` times the alternatives).
    """
    a = a.float().contiguous()
    index, weight = index.to(torch.int32).contiguous(), weight.float().contiguous()
    b, n, _ = a.shape
    if index.shape != (n, 4) or weight.shape != (n, 4):
        raise ValueError(f"mix must be {n} x 4, got {tuple(index.shape)} / {tuple(weight.shape)}")
    if not 1 <= num_mix <= 4:
        raise ValueError(f"num_mix must be in 1..4, got {num_mix}")
    kk = min(int(k), n - 1)
    bm, bn = _block(n, block_m), _block(n, block_n)
    grid = (b, triton.cdiv(n, bm))
    s = torch.empty(b, n, device=a.device, dtype=torch.float32)
    _diag[grid](a, index, weight, s, n, a.stride(0), a.stride(1), BLOCK=bm, NMIX=num_mix, num_warps=num_warps)
    log_rho = torch.zeros(b, n, device=a.device, dtype=torch.float32)
    if kk > 0:
        _density[grid](a, index, weight, s, log_rho, n, a.stride(0), a.stride(1), float(scale),
                       kk * float(tau), K1=kk + 1, KP=triton.next_power_of_2(kk + 1),
                       BLOCK_M=bm, BLOCK_N=bn, NMIX=num_mix, num_warps=num_warps)
    delta_sq = torch.empty(b, n, device=a.device, dtype=torch.float32)
    _delta[grid](a, index, weight, s, log_rho, delta_sq, n, a.stride(0), a.stride(1), float(scale),
                 BLOCK_M=bm, BLOCK_N=bn, NMIX=num_mix, num_warps=num_warps)
    return log_rho, delta_sq.clamp_min_(0.0).sqrt_()
