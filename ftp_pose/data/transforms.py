"""Top-down affine crops (HRNet / mmpose convention), shared by every frame of a clip.

Pixel-coordinate convention
---------------------------
Coordinates are continuous and a pixel's *centre* sits on integer coordinates, as in OpenCV's
``warpAffine`` (``dst(x, y) = src(M^-1 (x, y))``) and in PoseTrack/COCO keypoints. The crop is
the classic HRNet/mmpose (non-UDP) top-down affine: the box centre maps to ``(W / 2, H / 2)`` of
the ``W x H`` crop and the box width ``scale[0]`` maps to ``W``. Because the image *and* the
joints are moved by the same matrix ``M``, labels stay exactly on the pixels they label; the
crop -> heatmap stride mapping (pixel-centre aligned) lives in :mod:`ftp_pose.data.heatmaps`.

``scale`` is the box size ``(w, h)`` in image pixels (not mmpose 0.x's ``/ 200`` units).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def box_to_center_scale(box_xywh: Sequence[float], aspect: float = 192 / 256,
                        enlarge: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size of the crop for a person box.

    Args:
        box_xywh: ``[x, y, w, h]`` in image pixels.
        aspect: crop width / height (``192 / 256`` for a 256 x 192 input).
        enlarge: factor applied to the box after fixing its aspect ratio (1.25 as in DCPose).
    Returns:
        ``center`` float32 [2] (x, y) and ``scale`` float32 [2] (w, h) in image pixels, with
        ``scale[0] / scale[1] == aspect``.
    """
    x, y, w, h = (float(v) for v in box_xywh)
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    scale = np.array([w, h], dtype=np.float32) * enlarge
    return center, scale


def get_affine_transform(center: Sequence[float], scale: Sequence[float], rotation_deg: float,
                         output_size: Sequence[int], inv: bool = False) -> np.ndarray:
    """The 2 x 3 matrix that crops ``scale`` around ``center``, rotated, into ``output_size``.

    Same transform as HRNet's ``get_affine_transform`` (three-point construction), in closed
    form and float64: ``q = s * R(-rotation) (p - center) + (W / 2, H / 2)`` with
    ``s = W / scale[0]``; a positive ``rotation_deg`` turns the image content counter-clockwise
    in the crop, as in HRNet.

    Args:
        center: (x, y) in image pixels.
        scale: (w, h) in image pixels; only ``w`` sets the zoom (the aspect is already fixed).
        rotation_deg: rotation in degrees.
        output_size: ``(W, H)`` of the crop (note: width first, as OpenCV).
        inv: return the crop -> image matrix instead.
    Returns:
        float32 2 x 3 matrix (image -> crop, or crop -> image when ``inv``).
    """
    cx, cy = float(center[0]), float(center[1])
    out_w, out_h = float(output_size[0]), float(output_size[1])
    s = out_w / float(scale[0])
    r = np.deg2rad(float(rotation_deg))
    cs, sn = np.cos(r), np.sin(r)
    if not inv:
        a = s * np.array([[cs, sn], [-sn, cs]])
        t = np.array([out_w * 0.5, out_h * 0.5]) - a @ np.array([cx, cy])
    else:
        a = (1.0 / s) * np.array([[cs, -sn], [sn, cs]])
        t = np.array([cx, cy]) - a @ np.array([out_w * 0.5, out_h * 0.5])
    return np.concatenate([a, t[:, None]], axis=1).astype(np.float32)


def flip_affine(output_width: int) -> np.ndarray:
    """2 x 3 matrix mirroring a crop of width ``W``: ``x -> W - 1 - x`` (pixel centres)."""
    return np.array([[-1.0, 0.0, output_width - 1.0], [0.0, 1.0, 0.0]], dtype=np.float32)


def compose_affine(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """2 x 3 matrix of ``second(first(p))``."""
    a = np.vstack([np.asarray(second, np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(first, np.float64), [0.0, 0.0, 1.0]])
    return (a @ b)[:2].astype(np.float32)


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2 x 3 affine matrix (float32 2 x 3)."""
    a = np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(a)[:2].astype(np.float32)


def affine_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2 x 3 matrix to ``N x 2`` points; returns float32 ``N x 2``."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(m, dtype=np.float64)
    return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)


def crop_frames(frames: list[np.ndarray], m: np.ndarray, output_size: Sequence[int]) -> list[np.ndarray]:
    """Warp every ``H x W x 3`` uint8 frame with the same matrix into ``output_size`` ``(W, H)``.

    Bilinear sampling; outside the image is black (0).
    """
    size = (int(output_size[0]), int(output_size[1]))
    return [cv2.warpAffine(f, np.asarray(m, np.float32), size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)) for f in frames]
