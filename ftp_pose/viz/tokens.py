"""Token geometry and token overlays: which image pixels a (kept) token stands for.

Index conventions (those of :mod:`ftp_pose.models.mgfe`):

* low-resolution branch (LRB): ``index = frame * (rows * cols) + row * cols + col`` on the
  backbone grid (16 x 12 for a 256 x 192 crop, one token per 16 x 16 patch);
* high-resolution branch (HRB): ``index = row * cols + col`` on the upsampled grid (64 x 48,
  the heatmap grid, one token per 4 x 4 pixels of the crop).

A grid of ``rows x cols`` cells laid over an image of ``H x W`` pixels gives cell ``(r, c)``
the pixel box ``[c * W / cols, r * H / rows, (c + 1) * W / cols, (r + 1) * H / rows)``
(x0, y0, x1, y1; x1, y1 exclusive). Images are ``H x W x 3`` uint8 RGB; functions return copies.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["index_to_cell", "cell_boxes", "kept_mask", "token_map", "cell_mask", "overlay_kept_tokens",
           "KEPT_COLOR", "HR_KEPT_COLOR"]

#: colour of kept LRB tokens (cyan) and kept HRB tokens (yellow), RGB
KEPT_COLOR: tuple[int, int, int] = (0, 220, 255)
HR_KEPT_COLOR: tuple[int, int, int] = (255, 215, 0)


def _as_index(index: object) -> np.ndarray:
    if hasattr(index, "detach"):
        index = index.detach().cpu().numpy()  # torch tensor
    idx = np.asarray(index)
    if idx.ndim != 1:
        raise ValueError(f"token indices must be a 1-D array (one batch element), got shape {idx.shape}")
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"token indices must be integers, got dtype {idx.dtype}")
    return idx.astype(np.int64)


def index_to_cell(index: object, grid_size: Sequence[int], num_frames: int = 1
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat token indices ``M`` -> ``(frame, row, col)``, each ``M`` int64.

    ``index = frame * rows * cols + row * cols + col``; indices outside
    ``[0, num_frames * rows * cols)`` raise ValueError.
    """
    rows, cols = int(grid_size[0]), int(grid_size[1])
    idx = _as_index(index)
    n = rows * cols
    if idx.size and (idx.min() < 0 or idx.max() >= n * num_frames):
        raise ValueError(f"token index out of range for {num_frames} x {rows} x {cols} tokens: "
                         f"min {idx.min()}, max {idx.max()}")
    frame, rest = np.divmod(idx, n)
    row, col = np.divmod(rest, cols)
    return frame, row, col


def cell_boxes(rows: np.ndarray, cols: np.ndarray, grid_size: Sequence[int], image_size: Sequence[int]
               ) -> np.ndarray:
    """Pixel boxes ``M x 4`` (x0, y0, x1, y1; float64, x1/y1 exclusive) of grid cells.

    ``grid_size`` is ``(rows, cols)`` of the token grid, ``image_size`` ``(H, W)`` of the image
    it covers (e.g. 16 x 12 tokens on a 256 x 192 crop: 16 x 16 pixel boxes).
    """
    gh, gw = float(grid_size[0]), float(grid_size[1])
    h, w = float(image_size[0]), float(image_size[1])
    r = np.asarray(rows, np.float64)
    c = np.asarray(cols, np.float64)
    ch, cw = h / gh, w / gw
    return np.stack([c * cw, r * ch, (c + 1) * cw, (r + 1) * ch], axis=-1)


def kept_mask(kept_index: object, num_tokens: int) -> np.ndarray:
    """Boolean ``num_tokens`` mask, True at the kept indices."""
    idx = _as_index(kept_index)
    if idx.size and (idx.min() < 0 or idx.max() >= num_tokens):
        raise ValueError(f"kept index out of range for {num_tokens} tokens: min {idx.min()}, max {idx.max()}")
    mask = np.zeros(int(num_tokens), bool)
    mask[idx] = True
    return mask


def token_map(values: object, grid_size: Sequence[int], frame: int = 0) -> np.ndarray:
    """Per-token values (``N`` or ``T * N``) -> the ``rows x cols`` map of one frame (float64)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    v = np.asarray(values, np.float64).reshape(-1)
    rows, cols = int(grid_size[0]), int(grid_size[1])
    n = rows * cols
    if v.size % n:
        raise ValueError(f"{v.size} values do not fill whole {rows} x {cols} grids")
    if not 0 <= frame < v.size // n:
        raise ValueError(f"frame {frame} out of range: {v.size // n} frame(s) of {n} tokens")
    return v[frame * n:(frame + 1) * n].reshape(rows, cols)


def cell_mask(mask_grid: np.ndarray, image_size: Sequence[int]) -> np.ndarray:
    """A ``rows x cols`` boolean grid -> the ``H x W`` pixel mask of the cells it marks."""
    g = np.asarray(mask_grid, bool)
    h, w = int(image_size[0]), int(image_size[1])
    ys = np.minimum((np.arange(h) + 0.5) * g.shape[0] / h, g.shape[0] - 1).astype(np.int64)
    xs = np.minimum((np.arange(w) + 0.5) * g.shape[1] / w, g.shape[1] - 1).astype(np.int64)
    return g[ys][:, xs]


def overlay_kept_tokens(image: np.ndarray, kept_index: object, grid_size: Sequence[int], *, frame: int = 0,
                        num_frames: int = 1, color: tuple[int, int, int] = KEPT_COLOR, alpha: float = 0.45,
                        dim: float = 0.45, outline: bool | None = None) -> np.ndarray:
    """Draw the kept tokens of one frame on ``image`` (``H x W x 3`` uint8 RGB, a copy is returned).

    Pruned cells are darkened (pixel x ``dim``), kept cells tinted with ``color`` (weight
    ``alpha``) and, when the cells are at least 12 pixels wide (``outline=None``), outlined.
    ``kept_index`` indexes ``num_frames`` grids of ``rows x cols`` tokens (see
    :func:`index_to_cell`); only the tokens of ``frame`` are drawn.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"overlay_kept_tokens: image must be H x W x 3, got shape {img.shape}")
    rows, cols = int(grid_size[0]), int(grid_size[1])
    f, r, c = index_to_cell(kept_index, (rows, cols), num_frames)
    grid = np.zeros((rows, cols), bool)
    grid[r[f == frame], c[f == frame]] = True
    m = cell_mask(grid, img.shape[:2])[..., None]
    out = img.astype(np.float32)
    tinted = (1 - alpha) * out + alpha * np.asarray(color, np.float32)
    out = np.where(m, tinted, out * dim)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    cell_w = img.shape[1] / cols
    if outline if outline is not None else cell_w >= 12:
        import cv2

        boxes = cell_boxes(r[f == frame], c[f == frame], (rows, cols), img.shape[:2])
        for x0, y0, x1, y1 in boxes:
            cv2.rectangle(out, (int(round(x0)), int(round(y0))), (int(round(x1)) - 1, int(round(y1)) - 1),
                          color, 1)
    return out
