"""Grid upsampling of token sets as a matrix product: the one owner of the HR interpolation.

Bilinear (``align_corners=False``) and nearest interpolation of an ``h x w`` grid by an
integer ``factor`` are linear maps: ``X_up = W X`` with ``W`` the ``N x m`` interpolation
matrix (``N = f^2 h w`` output cells, ``m = h w`` input cells, row-major). Each row of ``W``
has at most 4 non-zeros (1 for nearest) that sum to 1.

* :func:`interp_matrix` builds ``W`` exactly as ``F.interpolate`` weighs its inputs (by
  interpolating the ``m`` one-hot images once, in float64), cached per size/mode/device/dtype.
* :func:`upsample_tokens` (``W X``: ``B x m x C -> B x N x C``) and :func:`upsample_rows`
  (``T W^T``: ``B x R x m -> B x R x N``) apply it. ``method="auto"`` uses one matmul with the
  cached ``W`` on CUDA (where ``F.interpolate`` on many channels or many one-channel images is
  slow: 77 % of the H100 time of ftp_pose at batch 32 before) and ``F.interpolate`` on the CPU
  (where the dense product costs ~``m / 4`` times more arithmetic than the 4-tap stencil and
  was not faster in our CPU timings; the CPU path thus runs exactly the ops it ran before). Both are equal up to float rounding (tested); FLOP counts (taken on the CPU)
  therefore do not include the interpolation, as before.
* :func:`interp_sparse` gives the same map as ``(index N x 4, weight N x 4)`` (unused slots
  have weight 0) for the fused DPC kernel (:mod:`ftp_pose.models.dpc_triton`).

Used by the HRB upsampling (:mod:`ftp_pose.models.mgfe`), the HRB DPC (``W G W^T``,
:mod:`ftp_pose.models.dpc`) and the baseline head (:mod:`ftp_pose.models.heads`). Nothing
here is a parameter or buffer, so state dicts are unchanged.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["MODES", "METHODS", "interp_matrix", "interp_sparse", "upsample_tokens", "upsample_rows"]

MODES = ("bilinear", "nearest")
#: ``auto``: the matrix product on CUDA, ``F.interpolate`` elsewhere
METHODS = ("auto", "matmul", "interpolate")


def _check(grid_size: tuple[int, int], factor: int, mode: str) -> tuple[int, int, int]:
    if mode not in MODES:
        raise ValueError(f"upsample mode must be one of {MODES}, got {mode!r}")
    h, w = (int(v) for v in grid_size)
    if h < 1 or w < 1 or int(factor) < 1:
        raise ValueError(f"bad upsampling: grid {grid_size}, factor {factor}")
    return h, w, int(factor)


@functools.lru_cache(maxsize=32)
def _matrix_f64(h: int, w: int, factor: int, mode: str) -> torch.Tensor:
    eye = torch.eye(h * w, dtype=torch.float64).reshape(h * w, 1, h, w)
    up = F.interpolate(eye, scale_factor=factor, mode=mode, **_kw(mode))  # m x 1 x fh x fw: column j of W
    return up.reshape(h * w, -1).t().contiguous()  # N x m


@functools.lru_cache(maxsize=64)
def _cached(h: int, w: int, factor: int, mode: str, device: str, dtype: torch.dtype) -> torch.Tensor:
    return _matrix_f64(h, w, factor, mode).to(device=device, dtype=dtype)


def interp_matrix(grid_size: tuple[int, int], factor: int, mode: str = "bilinear",
                  device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``N x m`` interpolation matrix ``W`` (``N = f^2 h w``, ``m = h w``), cached; do not modify."""
    h, w, f = _check(grid_size, factor, mode)
    if torch.compiler.is_compiling():
        # traced by torch.compile: build it on the device inside the graph (no cache, no host
        # tensor that would keep Inductor from using CUDA graphs); the weights are exact in float32
        eye = torch.eye(h * w, device=device, dtype=torch.float32).reshape(h * w, 1, h, w)
        return F.interpolate(eye, scale_factor=f, mode=mode, **_kw(mode)).reshape(h * w, -1).t().to(dtype)
    return _cached(h, w, f, mode, str(torch.device(device)), dtype)


@functools.lru_cache(maxsize=32)
def _sparse_cpu(h: int, w: int, factor: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    wm = _matrix_f64(h, w, factor, mode)
    val, idx = torch.topk(wm, min(4, wm.shape[1]), dim=1)  # the (at most 4) non-zeros of each row
    idx = torch.where(val > 0, idx, torch.zeros_like(idx))
    if idx.shape[1] < 4:
        pad = 4 - idx.shape[1]
        idx = F.pad(idx, (0, pad))
        val = F.pad(val, (0, pad))
    return idx.to(torch.int32).contiguous(), val.float().contiguous()


def interp_sparse(grid_size: tuple[int, int], factor: int, mode: str = "bilinear",
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``W`` as ``(index, weight)``, each ``N x 4`` (int32, float32): ``W[i] = sum_t weight[i,t] e_{index[i,t]}``."""
    h, w, f = _check(grid_size, factor, mode)
    return _sparse_dev(h, w, f, mode, str(torch.device(device)))


@functools.lru_cache(maxsize=32)
def _sparse_dev(h: int, w: int, factor: int, mode: str, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    idx, val = _sparse_cpu(h, w, factor, mode)
    return idx.to(device), val.to(device)


def _matmul(x: torch.Tensor, method: str) -> bool:
    if method not in METHODS:
        raise ValueError(f"upsampling method must be one of {METHODS}, got {method!r}")
    return method == "matmul" or (method == "auto" and x.is_cuda)


def _dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the matmul will run in (autocast's when it is on): no cast of the cached matrix."""
    return torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype


def _kw(mode: str) -> dict:
    return {"align_corners": False} if mode == "bilinear" else {}


def upsample_tokens(x: torch.Tensor, grid_size: tuple[int, int], factor: int, mode: str = "bilinear",
                    method: str = "auto") -> torch.Tensor:
    """``W X``: ``B x (h*w) x C -> B x (f*h * f*w) x C`` (row-major), like ``F.interpolate``."""
    h, w, f = _check(grid_size, factor, mode)
    if x.dim() != 3 or x.shape[1] != h * w:
        raise ValueError(f"expected tokens B x {h * w} x C, got {tuple(x.shape)}")
    if _matmul(x, method):
        return torch.matmul(interp_matrix(grid_size, f, mode, x.device, _dtype(x)), x)
    b, _, c = x.shape
    img = F.interpolate(x.transpose(1, 2).reshape(b, c, h, w), scale_factor=f, mode=mode, **_kw(mode))
    return img.flatten(2).transpose(1, 2)


def upsample_rows(t: torch.Tensor, grid_size: tuple[int, int], factor: int, mode: str = "bilinear",
                  method: str = "auto") -> torch.Tensor:
    """``T W^T``: ``B x R x (h*w) -> B x R x (f*h * f*w)``, each row interpolated as an ``h x w`` image."""
    h, w, f = _check(grid_size, factor, mode)
    if t.dim() != 3 or t.shape[2] != h * w:
        raise ValueError(f"expected rows B x R x {h * w}, got {tuple(t.shape)}")
    if _matmul(t, method):
        return torch.matmul(t, interp_matrix(grid_size, f, mode, t.device, _dtype(t)).t())
    b, r, _ = t.shape
    return F.interpolate(t.reshape(b * r, 1, h, w), scale_factor=f, mode=mode, **_kw(mode)).reshape(b, r, -1)
