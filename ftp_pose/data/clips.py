"""One owner for a clip's pixels: reading frames, the crop around a person box, normalisation.

The frame layout (which offsets, where the key frame sits) is :class:`ftp_pose.clip.ClipLayout`;
this module turns frames into the model's input. The dataset, the demo and the notebooks all crop
here, so a clip looks the same wherever it is made::

    m = box_affine(box, input_size)                    # image -> input-crop affine, 2 x 3
    clip = crop_clip(frames, m, input_size)            # T x 3 x H x W, ImageNet-normalised float32
    ids = clip_frame_ids(t, layout, available)         # frame indices, a missing neighbour -> t
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from ftp_pose.clip import ClipLayout
from ftp_pose.data.transforms import box_to_center_scale, crop_frames, get_affine_transform
from ftp_pose.errors import DataLayoutError, MissingFileError, UnreadableFileError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "read_rgb", "normalize", "denormalize", "parse_box", "box_affine",
           "crop_clip", "clip_frame_ids"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def read_rgb(path: str | Path, what: str = "") -> np.ndarray:
    """Read an image file as ``H x W x 3`` uint8 RGB; a missing/unreadable file raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"image file not found: {path}{what}")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UnreadableFileError(f"image file could not be decoded: {path}{what}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def normalize(frames: np.ndarray) -> torch.Tensor:
    """``T x H x W x 3`` uint8 RGB -> float32 ``T x 3 x H x W`` ImageNet-normalised tensor."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def denormalize(clip: torch.Tensor | np.ndarray) -> np.ndarray:
    """Undo :func:`normalize`: ``T x 3 x H x W`` (or ``3 x H x W``) -> uint8 ``T x H x W x 3``
    (or ``H x W x 3``) RGB."""
    x = clip.detach().float().cpu().numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip, np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
    x = x * np.array(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1) + np.array(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    out = np.clip(np.round(x.transpose(0, 2, 3, 1) * 255.0), 0, 255).astype(np.uint8)
    return out[0] if single else out


def parse_box(value: object, where: str, field_name: str = "bbox") -> np.ndarray:
    """``[x, y, w, h]`` as float32 [4]; DataLayoutError naming ``where`` and the field otherwise.

    Accepts any array-like of four finite numbers (nested lists are flattened) with w, h > 0.
    """
    try:
        box = np.asarray(value, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise DataLayoutError(f"{where}: field '{field_name}' is not numeric: {value!r}") from None
    if box.shape != (4,) or not np.isfinite(box).all():
        raise DataLayoutError(f"{where}: field '{field_name}' must be 4 finite numbers [x, y, w, h], got {value!r}")
    if box[2] <= 0 or box[3] <= 0:
        raise DataLayoutError(f"{where}: field '{field_name}' has zero or negative size "
                              f"(w={box[2]:g}, h={box[3]:g})")
    return box


def box_affine(box: Sequence[float], input_size: tuple[int, int], enlarge: float = 1.25,
               rotation: float = 0.0) -> np.ndarray:
    """Image -> input-crop affine (``2 x 3`` float32) of a person box ``[x, y, w, h]``.

    The box is centred, given the aspect of ``input_size`` (``H, W``) and enlarged ``enlarge``
    times, as the top-down loaders of HRNet / DCPose do.
    """
    in_h, in_w = input_size
    center, scale = box_to_center_scale(np.asarray(box, np.float32), aspect=in_w / in_h, enlarge=enlarge)
    return get_affine_transform(center, scale, rotation, (in_w, in_h))


def crop_clip(frames: Sequence[np.ndarray], affine: np.ndarray, input_size: tuple[int, int]) -> torch.Tensor:
    """Warp every frame (``H_img x W_img x 3`` uint8 RGB) with ``affine`` and normalise:
    ``T x 3 x H x W`` float32, ``input_size = (H, W)``."""
    in_h, in_w = input_size
    return normalize(np.stack(crop_frames(list(frames), affine, (in_w, in_h))))


def clip_frame_ids(t: int, layout: ClipLayout, available: Callable[[int], bool]) -> list[int]:
    """Frame indices of the clip around key frame ``t``, in :attr:`ClipLayout.frames` order.

    A neighbour for which ``available(index)`` is False (a video boundary) repeats the key frame.
    """
    return [t + o if o == 0 or available(t + o) else t for o in layout.frames]
