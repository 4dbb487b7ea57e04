"""The heatmap codec, in one place: Gaussian targets, decoding, and the way back to the image.

:class:`HeatmapCodec` holds the sizes (as mmpose's codecs do): ``encode`` input-crop keypoints
into targets, ``decode`` heatmaps into input-crop keypoints, ``decode_to_image`` into image
keypoints through the crop's inverse affine. The free functions below are its steps.

Conventions
-----------
* ``input_size`` and ``heatmap_size`` are ``(H, W)``: ``(256, 192)`` and ``(64, 48)`` by default.
* Pixel centres sit on integer coordinates everywhere (see :mod:`ftp_pose.data.transforms`).
  Heatmap pixel ``i`` covers input pixels ``[s*i, s*i + s - 1]`` (stride ``s = 4``), so the
  centre-aligned mapping is ``x_hm = (x_in + 0.5) / s - 0.5`` and back
  ``x_in = (x_hm + 0.5) * s - 0.5``. With it, mirroring an input of width ``W`` (``x -> W-1-x``)
  is exactly mirroring the heatmap (``x -> w-1-x``): flip test needs no one-pixel shift.
* Targets are *unbiased* Gaussians (DARK, Zhang et al. CVPR 2020): the sub-pixel joint position
  is the Gaussian's mean, sampled on the integer grid, so ``decode(encode(x)) == x`` with
  ``refine="dark"`` up to float precision (away from the heatmap border).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from ftp_pose.keypoints import FLIP_PAIRS, NUM_JOINTS
from ftp_pose.data.transforms import affine_points

ArrayLike = np.ndarray | torch.Tensor


def _strides(input_size: Sequence[int], heatmap_size: Sequence[int]) -> np.ndarray:
    """(sx, sy) = input / heatmap per axis, from ``(H, W)`` sizes."""
    return np.array([input_size[1] / heatmap_size[1], input_size[0] / heatmap_size[0]], dtype=np.float64)


def input_to_heatmap(xy: np.ndarray, input_size: Sequence[int] = (256, 192),
                     heatmap_size: Sequence[int] = (64, 48)) -> np.ndarray:
    """Input-crop pixels ``... x 2`` -> heatmap pixels (pixel-centre aligned)."""
    s = _strides(input_size, heatmap_size)
    return ((np.asarray(xy, np.float64) + 0.5) / s - 0.5).astype(np.float32)


def heatmap_to_input(xy: np.ndarray, input_size: Sequence[int] = (256, 192),
                     heatmap_size: Sequence[int] = (64, 48)) -> np.ndarray:
    """Heatmap pixels ``... x 2`` -> input-crop pixels (inverse of :func:`input_to_heatmap`)."""
    s = _strides(input_size, heatmap_size)
    return ((np.asarray(xy, np.float64) + 0.5) * s - 0.5).astype(np.float32)


def encode_heatmaps(joints_xy: np.ndarray, visible: np.ndarray, input_size: Sequence[int] = (256, 192),
                    heatmap_size: Sequence[int] = (64, 48), sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian heatmap targets for one person.

    Args:
        joints_xy: ``J x 2`` joint positions in INPUT-crop pixels.
        visible: ``J`` flags (> 0 means annotated and visible).
        input_size, heatmap_size: ``(H, W)``.
        sigma: Gaussian standard deviation in heatmap pixels.
    Returns:
        ``heatmaps`` float32 ``J x h x w`` (peak value 1 at the exact sub-pixel joint) and
        ``weights`` float32 ``J``: 1 for a visible joint whose position lies on the heatmap
        (``-0.5 <= x_hm < w - 0.5``, same for y), else 0 (and an all-zero heatmap).
    """
    joints_xy = np.asarray(joints_xy, dtype=np.float64).reshape(-1, 2)
    visible = np.asarray(visible).reshape(-1)
    if joints_xy.shape[0] != visible.shape[0]:
        raise ValueError(f"encode_heatmaps: {joints_xy.shape[0]} joints but {visible.shape[0]} visibility flags")
    h, w = int(heatmap_size[0]), int(heatmap_size[1])
    mu = input_to_heatmap(joints_xy, input_size, heatmap_size).astype(np.float64)
    inside = (mu[:, 0] >= -0.5) & (mu[:, 0] < w - 0.5) & (mu[:, 1] >= -0.5) & (mu[:, 1] < h - 0.5)
    weights = ((visible > 0) & inside & np.isfinite(mu).all(1)).astype(np.float32)
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    gx = np.exp(-((xs[None, :] - mu[:, :1]) ** 2) / (2 * sigma ** 2))  # J x w
    gy = np.exp(-((ys[None, :] - mu[:, 1:]) ** 2) / (2 * sigma ** 2))  # J x h
    heatmaps = (gy[:, :, None] * gx[:, None, :]).astype(np.float32) * weights[:, None, None]
    return heatmaps, weights


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def decode_heatmaps(heatmaps: ArrayLike, refine: str | None = "dark",
                    blur_kernel: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions from heatmaps.

    Args:
        heatmaps: ``B x J x h x w`` (numpy or torch, any device).
        refine: ``"dark"`` (Gaussian-blur then second-order Taylor step on the log-heatmap, DARK),
            ``"quarter"`` (HRNet's quarter-pixel shift towards the higher neighbour) or ``None``
            (integer argmax).
        blur_kernel: odd Gaussian kernel size for ``"dark"`` (0 = no blur; the blurred map is
            rescaled to the original maximum, as mmpose does).
    Returns:
        ``coords`` float32 ``B x J x 2`` (x, y) in HEATMAP pixels and ``maxvals`` float32
        ``B x J`` (the raw heatmap maximum, the joint's confidence).
    """
    hm = _to_numpy(heatmaps)
    if hm.ndim != 4:
        raise ValueError(f"decode_heatmaps expects B x J x h x w, got shape {tuple(hm.shape)}")
    b, j, h, w = hm.shape
    flat = hm.reshape(b, j, -1)
    idx = flat.argmax(-1)
    maxvals = np.take_along_axis(flat, idx[..., None], -1)[..., 0].astype(np.float32)
    px, py = idx % w, idx // w
    coords = np.stack([px, py], -1).astype(np.float64)
    if refine is None:
        pass
    elif refine == "quarter":
        ok = (px >= 1) & (px <= w - 2) & (py >= 1) & (py <= h - 2)
        bi, ji = np.nonzero(ok)
        x, y = px[ok], py[ok]
        dx = hm[bi, ji, y, x + 1] - hm[bi, ji, y, x - 1]
        dy = hm[bi, ji, y + 1, x] - hm[bi, ji, y - 1, x]
        coords[bi, ji, 0] += 0.25 * np.sign(dx)
        coords[bi, ji, 1] += 0.25 * np.sign(dy)
    elif refine == "dark":
        src = hm
        if blur_kernel and blur_kernel > 1:
            src = np.empty_like(hm)
            for bb in range(b):
                for jj in range(j):
                    m0 = hm[bb, jj]
                    top = float(m0.max())
                    blurred = cv2.GaussianBlur(m0, (blur_kernel, blur_kernel), 0)
                    bm = float(blurred.max())
                    src[bb, jj] = blurred * (top / bm) if bm > 0 else blurred
        lg = np.log(np.maximum(src, 1e-10)).astype(np.float64)
        ok = (px >= 1) & (px <= w - 2) & (py >= 1) & (py <= h - 2) & (maxvals > 0)
        bi, ji = np.nonzero(ok)
        x, y = px[ok], py[ok]
        c = lg[bi, ji, y, x]
        dx = 0.5 * (lg[bi, ji, y, x + 1] - lg[bi, ji, y, x - 1])
        dy = 0.5 * (lg[bi, ji, y + 1, x] - lg[bi, ji, y - 1, x])
        dxx = lg[bi, ji, y, x + 1] - 2 * c + lg[bi, ji, y, x - 1]
        dyy = lg[bi, ji, y + 1, x] - 2 * c + lg[bi, ji, y - 1, x]
        dxy = 0.25 * (lg[bi, ji, y + 1, x + 1] - lg[bi, ji, y - 1, x + 1]
                      - lg[bi, ji, y + 1, x - 1] + lg[bi, ji, y - 1, x - 1])
        det = dxx * dyy - dxy ** 2
        good = (np.abs(det) > 1e-12) & (dxx < 0) & (dyy < 0) & (det > 0)  # a real maximum
        safe = np.where(good, det, 1.0)
        ox = -(dyy * dx - dxy * dy) / safe
        oy = -(dxx * dy - dxy * dx) / safe
        ox = np.clip(np.where(good, ox, 0.0), -1.0, 1.0)
        oy = np.clip(np.where(good, oy, 0.0), -1.0, 1.0)
        coords[bi, ji, 0] += ox
        coords[bi, ji, 1] += oy
    else:
        raise ValueError(f"decode_heatmaps: unknown refine {refine!r} (use 'dark', 'quarter' or None)")
    return coords.astype(np.float32), maxvals


def heatmap_to_image_coords(coords_hm: np.ndarray, affine_inv: ArrayLike,
                            heatmap_size: Sequence[int] = (64, 48),
                            input_size: Sequence[int] = (256, 192)) -> np.ndarray:
    """Heatmap pixels -> image pixels.

    Args:
        coords_hm: ``B x J x 2`` (or ``J x 2``) in heatmap pixels.
        affine_inv: crop -> image matrices, ``B x 2 x 3`` or one ``2 x 3`` for all (the inverse of
            a sample's ``meta["affine"]``, see :func:`ftp_pose.data.transforms.invert_affine`).
        heatmap_size, input_size: ``(H, W)``.
    Returns:
        float32 coordinates in image pixels, same leading shape as ``coords_hm``.
    """
    coords = np.asarray(coords_hm, dtype=np.float32)
    single = coords.ndim == 2
    if single:
        coords = coords[None]
    inv = _to_numpy(affine_inv)
    if inv.ndim == 2:
        inv = np.broadcast_to(inv, (coords.shape[0], 2, 3))
    if inv.shape != (coords.shape[0], 2, 3):
        raise ValueError(f"heatmap_to_image_coords: affine_inv shape {inv.shape} does not match "
                         f"coords {coords.shape} (want B x 2 x 3)")
    xy_in = heatmap_to_input(coords, input_size, heatmap_size)
    out = np.stack([affine_points(xy_in[i], inv[i]) for i in range(coords.shape[0])])
    return out[0] if single else out


def flip_permutation(num_joints: int = NUM_JOINTS) -> list[int]:
    """Joint index permutation of a horizontal flip (left <-> right via FLIP_PAIRS)."""
    perm = list(range(num_joints))
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


def flip_heatmaps(heatmaps: ArrayLike) -> ArrayLike:
    """Mirror ``B x J x h x w`` heatmaps left-right and swap left/right joint channels.

    Used by flip test: average ``model(x)`` with ``flip_heatmaps(model(flip(x)))``. With this
    package's pixel-centre convention the mirror is exact (no one-pixel shift as in HRNet).
    Returns the same type (numpy or torch) as the input.
    """
    perm = flip_permutation(heatmaps.shape[1])
    if isinstance(heatmaps, torch.Tensor):
        return torch.flip(heatmaps, dims=[-1])[:, perm]
    return np.ascontiguousarray(np.asarray(heatmaps)[..., ::-1][:, perm])


@dataclass(frozen=True)
class HeatmapCodec:
    """Gaussian heatmap targets for crops of ``input_size`` and their decoding back to crop pixels.

    Args:
        input_size: crop ``(H, W)`` in pixels, e.g. ``(256, 192)``.
        heatmap_size: heatmap ``(h, w)``, e.g. ``(64, 48)``.
        sigma: Gaussian standard deviation in heatmap pixels (encoding only).
        blur_kernel: odd Gaussian kernel size of the ``"dark"`` refinement (0 = no blur).
    """

    input_size: tuple[int, int] = (256, 192)
    heatmap_size: tuple[int, int] = (64, 48)
    sigma: float = 2.0
    blur_kernel: int = 11

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))
        object.__setattr__(self, "heatmap_size", (int(self.heatmap_size[0]), int(self.heatmap_size[1])))

    def encode(self, keypoints: np.ndarray, visible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Targets for one person.

        Args:
            keypoints: ``J x 2`` (x, y) in input-crop pixels, or ``J x 3`` (x, y, visibility).
            visible: ``J`` flags (> 0 = visible); default: the third column, else all visible.
        Returns:
            ``heatmaps`` float32 ``J x h x w`` and ``weights`` float32 ``J`` (see :func:`encode_heatmaps`).
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        if kp.ndim != 2 or kp.shape[1] not in (2, 3):
            raise ValueError(f"HeatmapCodec.encode expects J x 2 or J x 3 keypoints, got shape {kp.shape}")
        if visible is None:
            visible = kp[:, 2] if kp.shape[1] == 3 else np.ones(len(kp))
        return encode_heatmaps(kp[:, :2], visible, self.input_size, self.heatmap_size, self.sigma)

    def decode(self, heatmaps: ArrayLike, refine: str | None = "dark") -> tuple[np.ndarray, np.ndarray]:
        """``B x J x h x w`` heatmaps -> (keypoints float32 ``B x J x 2`` in input-crop pixels,
        scores float32 ``B x J``: each heatmap's maximum). ``refine``: see :func:`decode_heatmaps`."""
        coords, scores = self._decode(heatmaps, refine)
        return heatmap_to_input(coords, self.input_size, self.heatmap_size), scores

    def decode_to_image(self, heatmaps: ArrayLike, inverse_affine: ArrayLike,
                        refine: str | None = "dark") -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`decode`, then crop -> image through ``inverse_affine`` (``B x 2 x 3``, or one
        ``2 x 3`` for all; the inverse of a sample's ``meta["affine"]``). Returns image pixels ``B x J x 2``."""
        coords, scores = self._decode(heatmaps, refine)
        return heatmap_to_image_coords(coords, inverse_affine, self.heatmap_size, self.input_size), scores

    def _decode(self, heatmaps: ArrayLike, refine: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Heatmap-pixel coordinates ``B x J x 2`` and scores, after checking the heatmaps' size."""
        shape = tuple(heatmaps.shape)
        if len(shape) == 4 and shape[-2:] != self.heatmap_size:
            raise ValueError(f"HeatmapCodec: heatmaps of size {shape[-2:]}, but the codec's heatmap_size is "
                             f"{self.heatmap_size}")
        return decode_heatmaps(heatmaps, refine=refine, blur_kernel=self.blur_kernel)
