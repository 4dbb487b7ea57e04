"""Drawing people: skeletons and boxes on images (OpenCV), and 3-frame clips with heatmaps (matplotlib).

Colours come from :mod:`ftp_pose.keypoints`: the person's left side in ``LEFT_COLOR`` (blue),
the right side in ``RIGHT_COLOR`` (orange), head and centre limbs in ``CENTER_COLOR`` (green).
All images are ``H x W x 3`` uint8 RGB; every function returns a copy.
"""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

from ftp_pose.keypoints import CENTER_COLOR, LEFT_COLOR, NUM_JOINTS, RIGHT_COLOR, SKELETON, joint_side

_SIDE_COLOR = {"left": LEFT_COLOR, "right": RIGHT_COLOR, "center": CENTER_COLOR}


def _limb_side(a: int, b: int) -> str:
    sa, sb = joint_side(a), joint_side(b)
    if sa == sb:
        return sa
    if "center" in (sa, sb):
        return sa if sb == "center" else sb
    return "center"  # left-right limbs (shoulders, hips)


def draw_skeleton(image: np.ndarray, joints: np.ndarray, visible: np.ndarray | None = None,
                  scores: np.ndarray | None = None, thresh: float = 0.3, color_by_side: bool = True,
                  radius: int | None = None, thickness: int | None = None,
                  color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Draw one person's skeleton.

    Args:
        image: ``H x W x 3`` uint8 RGB (not modified).
        joints: ``17 x 2`` or ``17 x 3`` (x, y[, v]) in image pixels.
        visible: ``17`` flags; default: ``v > 0`` of a ``17 x 3`` input, else all joints.
        scores: ``17`` confidences; joints with ``score < thresh`` are not drawn.
        color_by_side: left / right / centre colours; else everything in ``color``.
        radius, thickness: joint radius and limb width in pixels (default: from the image size).
    Returns:
        a copy of ``image`` with limbs and joints (joints with a dark outline).
    """
    out = np.ascontiguousarray(np.array(image, dtype=np.uint8, copy=True))
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 2 or j.shape[0] != NUM_JOINTS or j.shape[1] not in (2, 3):
        raise ValueError(f"draw_skeleton: joints must be {NUM_JOINTS} x 2 or {NUM_JOINTS} x 3, got {j.shape}")
    if visible is None:
        visible = j[:, 2] > 0 if j.shape[1] == 3 else np.ones(NUM_JOINTS, bool)
    show = np.asarray(visible, bool).copy() & np.isfinite(j[:, :2]).all(1)
    if scores is not None:
        show &= np.asarray(scores, np.float64).reshape(-1) >= thresh
    size = min(out.shape[:2])
    radius = radius if radius is not None else max(2, int(round(size / 110)))
    thickness = thickness if thickness is not None else max(1, int(round(size / 160)))
    sub = 4
    pts = [(int(round(x * 16)), int(round(y * 16))) for x, y in j[:, :2]]
    for a, b in SKELETON:
        if show[a] and show[b]:
            c = _SIDE_COLOR[_limb_side(a, b)] if color_by_side else color
            cv2.line(out, pts[a], pts[b], c, thickness, cv2.LINE_AA, sub)
    for k in range(NUM_JOINTS):
        if show[k]:
            c = _SIDE_COLOR[joint_side(k)] if color_by_side else color
            cv2.circle(out, pts[k], (radius + 1) * 16, (20, 20, 20), -1, cv2.LINE_AA, sub)
            cv2.circle(out, pts[k], radius * 16, c, -1, cv2.LINE_AA, sub)
    return out


def draw_box(image: np.ndarray, box_xywh: Sequence[float], color: tuple[int, int, int] = (255, 255, 255),
             thickness: int | None = None, label: str | None = None) -> np.ndarray:
    """Draw an ``[x, y, w, h]`` box (and an optional text label above it); returns a copy."""
    out = np.ascontiguousarray(np.array(image, dtype=np.uint8, copy=True))
    x, y, w, h = (float(v) for v in box_xywh)
    thickness = thickness if thickness is not None else max(1, int(round(min(out.shape[:2]) / 300)))
    p0, p1 = (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))
    cv2.rectangle(out, p0, p1, color, thickness, cv2.LINE_AA)
    if label:
        scale = max(0.35, min(out.shape[:2]) / 900)
        cv2.putText(out, label, (p0[0], max(p0[1] - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                    max(1, thickness), cv2.LINE_AA)
    return out


def heatmap_overlay(image: np.ndarray, heatmaps: np.ndarray, alpha: float = 0.6, cmap: str = "magma") -> np.ndarray:
    """Key-frame image with the joints' heatmaps (``J x h x w``, summed and clipped to [0, 1])
    resized onto it (half-pixel-centre resize, matching the heatmap codec) and coloured."""
    import matplotlib

    hm = np.clip(np.asarray(heatmaps, np.float32).sum(0), 0.0, 1.0)
    hm = cv2.resize(hm, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    colored = (matplotlib.colormaps[cmap](hm)[..., :3] * 255).astype(np.float32)
    a = alpha * hm[..., None]
    out = image.astype(np.float32) * (1 - a) * 0.75 + colored * a
    return np.clip(out, 0, 255).astype(np.uint8)


def _sample_arrays(sample: dict[str, Any]) -> tuple[list[np.ndarray], Any, np.ndarray | None, int]:
    """frames (T of H x W x 3 uint8), joints (17 x 3 key, or T x 17 x 3, crop pixels), heatmaps, key index."""
    if "frames" in sample:
        frames = [np.asarray(f, np.uint8) for f in sample["frames"]]
        joints = sample.get("joints")
        key = int(sample.get("key_index", len(frames) // 2))
        return frames, joints, sample.get("heatmaps"), key
    from ftp_pose.data.clips import denormalize
    from ftp_pose.data.heatmaps import flip_permutation
    from ftp_pose.data.transforms import affine_points

    frames = list(denormalize(sample["clip"]))
    meta = sample["meta"]
    key = int(meta["key_index"])
    joints = np.asarray(meta["joints"], np.float32)
    joints_crop = None
    if (joints[:, 2] > 0).any():
        xy = affine_points(joints[:, :2], np.asarray(meta["affine"], np.float32))
        joints_crop = np.concatenate([xy, joints[:, 2:]], 1)
        if bool(meta["flipped"]):
            joints_crop = joints_crop[flip_permutation()]
    hm = sample.get("heatmaps")
    hm = None if hm is None else np.asarray(hm, np.float32)
    return frames, joints_crop, hm, key


def plot_clip(sample_or_arrays: dict[str, Any], ax_row: Sequence[Any] | None = None, *,
              frame_joints: Sequence[np.ndarray | None] | None = None, titles: Sequence[str] | None = None,
              show_heatmap: bool = True, heatmap_alpha: float = 0.7):
    """Draw a clip: its ``T`` frames with skeletons, then the key frame with its heatmaps.

    Args:
        sample_or_arrays: a :class:`~ftp_pose.data.PoseTrackClipDataset` item (``clip``,
            ``heatmaps``, ``meta``), or a dict of arrays: ``frames`` (T x H x W x 3 uint8 RGB),
            optional ``joints`` (17 x 3 in crop pixels, drawn on the key frame), ``heatmaps``
            (17 x h x w), ``key_index``.
        ax_row: ``T + 1`` matplotlib axes (``T`` without heatmap); None makes a new figure.
        frame_joints: optional per-frame ``17 x 3`` crop-pixel skeletons (None entries skipped);
            default: the key frame's joints on the key frame only.
        titles: per-panel titles (default ``t-1, t (key), t+1, heatmaps``).
    Returns:
        the list of axes drawn on.
    """
    import matplotlib.pyplot as plt

    frames, joints, heatmaps, key = _sample_arrays(sample_or_arrays)
    n_panels = len(frames) + (1 if show_heatmap and heatmaps is not None else 0)
    if ax_row is None:
        _, ax_row = plt.subplots(1, n_panels, figsize=(2.2 * n_panels, 3.2))
        ax_row = list(np.atleast_1d(ax_row))
    if len(ax_row) < n_panels:
        raise ValueError(f"plot_clip needs {n_panels} axes, got {len(ax_row)}")
    if frame_joints is None:
        frame_joints = [joints if t == key else None for t in range(len(frames))]
    if titles is None:
        titles = [("t" if t == key else f"t{t - key:+d}") + (" (key)" if t == key else "") for t in range(len(frames))]
        titles = list(titles) + ["key heatmaps"]
    for t, frame in enumerate(frames):
        img = frame
        if frame_joints[t] is not None:
            img = draw_skeleton(img, frame_joints[t], radius=3, thickness=2)
        ax_row[t].imshow(img)
        ax_row[t].set_title(titles[t], fontsize=9)
    if n_panels > len(frames):
        ax = ax_row[len(frames)]
        ax.imshow(heatmap_overlay(frames[key], heatmaps, alpha=heatmap_alpha))
        ax.set_title(titles[len(frames)] if len(titles) > len(frames) else "heatmaps", fontsize=9)
    for ax in ax_row[:n_panels]:
        ax.set_xticks([])
        ax.set_yticks([])
    return list(ax_row[:n_panels])
