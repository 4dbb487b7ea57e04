"""Person detectors for the demo when no ``--boxes`` are given.

* :class:`HOGPeopleDetector` (default, offline, no weights to fetch): the Dalal-Triggs HOG people
  detector with OpenCV's default INRIA SVM (:mod:`ftp_pose.video.hog_people_svm`). OpenCV 5, which
  this project pins, no longer has ``cv2.HOGDescriptor``, so the descriptor is computed here with
  torch, following OpenCV 4's ``HOGDescriptor`` (64 x 128 window, 16 x 16 blocks of 2 x 2 cells of
  8 x 8 pixels, 9 unsigned orientation bins, gamma correction, per-block Gaussian weighting with
  sigma 4, bilinear votes into the cells, L2-Hys block normalisation): block histograms are one
  strided convolution of the per-bin gradient magnitudes, the SVM another convolution over the
  block grid. Multi-scale: the frame is resized to ``width`` pixels, then a pyramid with factor
  ``scale``; windows scoring above ``hit_threshold`` go through greedy NMS (IoU ``nms_iou``) and a
  box is kept when at least ``min_support`` windows overlapped it (OpenCV's grouping rule, in spirit).
* :class:`TorchvisionPersonDetector`: a torchvision detection model (``fasterrcnn_resnet50_fpn`` by
  default) loaded from a weights file given on the command line; never downloads anything.

Both map an RGB uint8 frame ``H x W x 3`` to ``(boxes N x 4 float32 [x, y, w, h] in frame pixels,
scores N float32)``, best first.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ftp_pose.errors import CheckpointError, MissingFileError, one_line

_WIN_W, _WIN_H, _CELL, _NBINS = 64, 128, 8, 9
_BLOCKS_X, _BLOCKS_Y = _WIN_W // _CELL - 1, _WIN_H // _CELL - 1  # 7 x 15 blocks per window


class PersonDetector(Protocol):
    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` (N x 4) and ``b`` (M x 4), both ``[x, y, w, h]``: an N x M matrix."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y2 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - inter
    return inter / np.maximum(union, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """Greedy non-maximum suppression: indices kept (best first) and, for each, how many boxes it
    suppressed (its support)."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep, support = [], []
    ious = box_iou(boxes, boxes)
    alive = np.ones(len(order), bool)
    for k, i in enumerate(order):
        if not alive[k]:
            continue
        rest = order[k + 1:]
        over = alive[k + 1:] & (ious[i, rest] > iou)
        alive[k + 1:][over] = False
        keep.append(int(i))
        support.append(int(over.sum()))
    return np.asarray(keep, np.int64), np.asarray(support, np.int64)


def _cell_weights() -> np.ndarray:
    """2 x 16: Gaussian (sigma 4, centred on the block) x bilinear weight of cells 0 and 1 along one axis."""
    coord = np.arange(2 * _CELL, dtype=np.float64)
    g = np.exp(-((coord - _CELL) ** 2) / (2 * 4.0 ** 2))  # OpenCV: d = i - blockSize / 2
    c = (coord + 0.5) / _CELL - 0.5  # in cell units, 0 at the centre of cell 0
    # tent weights; beyond the outer cell centres the weight keeps falling (OpenCV drops the share
    # of the cell outside the block)
    return g * np.stack([np.clip(1 - np.abs(c), 0, 1), np.clip(1 - np.abs(c - 1), 0, 1)])


_BANDS: dict[int, np.ndarray] = {}


def _band_matrix(n: int) -> np.ndarray:
    """``2 B x n`` float32 (``B = n // 8 - 1`` blocks at stride 8): row ``2 i + c`` holds the weights of
    cell ``c`` of block ``i`` at pixels ``8 i .. 8 i + 15`` along one axis (cached per ``n``)."""
    if n not in _BANDS:
        nb = n // _CELL - 1
        m = np.zeros((2 * max(nb, 0), n), np.float32)
        w = _cell_weights()
        for i in range(nb):
            m[2 * i:2 * i + 2, _CELL * i:_CELL * i + 2 * _CELL] = w
        _BANDS[n] = m
    return _BANDS[n]


_SQRT_LUT = np.sqrt(np.arange(256, dtype=np.float32))


class HOGPeopleDetector:
    """Multi-scale HOG + linear SVM people detector (see the module docstring).

    Defaults tuned on a 1280 x 720 street video with several people walking (OpenPose's video.avi:
    about 5 people per frame found): frames resized to ``width=640``, ``win_stride=8``, pyramid
    ``scale=1.1``, ``hit_threshold=0.0``, NMS IoU 0.4, ``min_support=1``. ``scale=1.05`` finds a few
    more people (5.5 per frame) at twice the time.
    """

    def __init__(self, width: int | None = 640, win_stride: int = 8, scale: float = 1.1,
                 hit_threshold: float = 0.0, nms_iou: float = 0.4, min_support: int = 1, padding: int = 8,
                 max_levels: int = 64):
        from ftp_pose.video.hog_people_svm import people_svm

        if win_stride % _CELL:
            raise ValueError(f"win_stride must be a multiple of {_CELL}, got {win_stride}")
        if scale <= 1.0:
            raise ValueError(f"scale must be > 1, got {scale}")
        self.width, self.win_stride, self.scale = width, win_stride, scale
        self.hit_threshold, self.nms_iou, self.min_support = hit_threshold, nms_iou, min_support
        self.padding, self.max_levels = padding, max_levels
        svm = people_svm()
        # OpenCV's descriptor order: block column, block row, cell (x-major), bin -> conv weight 1 x 36 x 15 x 7
        w = svm[:-1].reshape(_BLOCKS_X, _BLOCKS_Y, 4, _NBINS).transpose(2, 3, 1, 0).reshape(1, 36, _BLOCKS_Y, _BLOCKS_X)
        self._svm_w = torch.from_numpy(np.ascontiguousarray(w))
        self._rho = float(svm[-1])

    # ---------------------------------------------------------------- descriptor
    def block_features(self, gray_or_rgb: np.ndarray) -> torch.Tensor:
        """L2-Hys normalised block histograms ``36 x By x Bx`` of an image padded by ``padding`` (reflect-101).

        Block (i, j) covers padded pixels ``[8 i, 8 i + 16) x [8 j, 8 j + 16)``; its 36 values are
        the 4 cells (x-major) x 9 bins, OpenCV's order.
        """
        img = gray_or_rgb if gray_or_rgb.ndim == 3 else gray_or_rgb[..., None]
        if img.dtype == np.uint8:
            img = _SQRT_LUT[img]  # gamma correction
        else:
            img = np.sqrt(np.maximum(img.astype(np.float32), 0))
        p = self.padding + 1
        img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REFLECT_101)
        if img.ndim == 2:
            img = img[..., None]
        dx = img[1:-1, 2:] - img[1:-1, :-2]  # H' x W' x C, central differences
        dy = img[2:, 1:-1] - img[:-2, 1:-1]
        mag2 = dx * dx + dy * dy
        if mag2.shape[2] > 1:  # the channel with the strongest gradient
            best = mag2.argmax(2)[..., None]
            dx, dy = np.take_along_axis(dx, best, 2)[..., 0], np.take_along_axis(dy, best, 2)[..., 0]
        else:
            dx, dy = dx[..., 0], dy[..., 0]
        mag, ang = cv2.cartToPolar(np.ascontiguousarray(dx), np.ascontiguousarray(dy))  # angle in [0, 2 pi)
        ang = ang * np.float32(_NBINS / math.pi) - np.float32(0.5)
        lo = np.floor(ang)
        frac = ang - lo
        lo = lo.astype(np.int64) % _NBINS
        hi = (lo + 1) % _NBINS
        m1 = mag * frac
        m0 = mag - m1
        h, w = mag.shape
        votes = np.zeros((h, _NBINS, w), np.float32)  # per-bin magnitudes, bins in the middle for the matmuls
        for b in range(_NBINS):
            votes[:, b] = np.where(lo == b, m0, 0) + np.where(hi == b, m1, 0)
        # block histograms: the 16 x 16 block kernel (Gaussian x bilinear cell weight) is separable, so the
        # strided 2-D correlation is two banded matrix products, rows then columns
        ky, kx = _band_matrix(h), _band_matrix(w)  # 2 By x h, 2 Bx x w: row (block, cell) weights
        rows = ky @ votes.reshape(h, -1)  # (By cy) x (bins w): one GEMM
        blocks = rows.reshape(-1, w) @ kx.T  # (By cy bins) x (Bx cx): one GEMM
        by, bx = ky.shape[0] // 2, kx.shape[0] // 2
        blocks = blocks.reshape(by, 2, _NBINS, bx, 2).transpose(4, 1, 2, 0, 3)  # cx, cy, bins, By, Bx
        blocks = torch.from_numpy(np.ascontiguousarray(blocks).reshape(4 * _NBINS, by, bx))  # x-major cells
        blocks = blocks / (blocks.norm(dim=0, keepdim=True) + 0.1 * 36)
        blocks = blocks.clamp(max=0.2)
        return blocks / (blocks.norm(dim=0, keepdim=True) + 1e-3)

    def window_scores(self, img: np.ndarray) -> torch.Tensor:
        """SVM score of every window of one pyramid level: ``Wy x Wx``; window (i, j) starts at
        ``(win_stride j - padding, win_stride i - padding)`` in the level's pixels."""
        blocks = self.block_features(img)
        step = self.win_stride // _CELL
        return F.conv2d(blocks[None], self._svm_w, stride=step)[0, 0] + self._rho

    # ---------------------------------------------------------------- detection
    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame`` H x W x 3 (RGB uint8) -> boxes N x 4 ``[x, y, w, h]`` in frame pixels, scores N."""
        H, W = frame.shape[:2]
        s0 = 1.0 if not self.width or W <= self.width else self.width / W
        base = cv2.resize(frame, (round(W * s0), round(H * s0)), interpolation=cv2.INTER_AREA) if s0 != 1.0 else frame
        bh, bw = base.shape[:2]
        boxes, scores = [], []
        level = 1.0
        for _ in range(self.max_levels):
            lw, lh = round(bw / level), round(bh / level)
            if lw < _WIN_W or lh < _WIN_H:
                break
            img = base if level == 1.0 else cv2.resize(base, (lw, lh), interpolation=cv2.INTER_LINEAR)
            sc = self.window_scores(img)
            ys, xs = torch.nonzero(sc >= self.hit_threshold, as_tuple=True)
            if len(ys):
                f = level / s0
                x = (xs.numpy() * self.win_stride - self.padding) * f
                y = (ys.numpy() * self.win_stride - self.padding) * f
                boxes.append(np.stack([x, y, np.full_like(x, _WIN_W * f), np.full_like(y, _WIN_H * f)], 1))
                scores.append(sc[ys, xs].numpy())
            level *= self.scale
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        b, s = np.concatenate(boxes), np.concatenate(scores)
        keep, support = nms(b, s, self.nms_iou)
        keep = keep[support >= self.min_support]
        b = _clip_boxes(b[keep], W, H)
        return b.astype(np.float32), s[keep].astype(np.float32)


def _clip_boxes(b: np.ndarray, W: int, H: int) -> np.ndarray:
    """Clip ``[x, y, w, h]`` boxes to the frame."""
    x1, y1 = np.clip(b[:, 0], 0, W), np.clip(b[:, 1], 0, H)
    x2, y2 = np.clip(b[:, 0] + b[:, 2], 0, W), np.clip(b[:, 1] + b[:, 3], 0, H)
    return np.stack([x1, y1, x2 - x1, y2 - y1], 1)


#: torchvision detection builders that ``--detector-arch`` accepts (COCO label 1 = person)
TORCHVISION_ARCHS = ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
                     "fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn",
                     "ssdlite320_mobilenet_v3_large")


class TorchvisionPersonDetector:
    """A torchvision detection model whose weights come from a local file (nothing is downloaded).

    ``weights``: a state dict saved with ``torch.save(model.state_dict(), PATH)`` (what torchvision's
    own weight files are), or a dict holding it under ``"model"`` or ``"state_dict"``. ``arch``: one of
    :data:`TORCHVISION_ARCHS`, built with ``weights=None, weights_backbone=None`` and ``num_classes``
    (91 for COCO models). Keeps label ``person_label`` (1 in COCO) with score >= ``score_thresh``.
    """

    def __init__(self, weights: str | Path, arch: str = "fasterrcnn_resnet50_fpn", *, num_classes: int = 91,
                 person_label: int = 1, score_thresh: float = 0.5, device: str | torch.device = "cpu"):
        import torchvision.models.detection as tvd

        weights = Path(weights)
        if arch not in TORCHVISION_ARCHS:
            raise ValueError(f"--detector-arch {arch!r}: choose one of {', '.join(TORCHVISION_ARCHS)}")
        if not weights.is_file():
            raise MissingFileError(f"detector weights not found: {weights}")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many kinds; re-raised as one line naming the file
            raise CheckpointError(f"cannot read detector weights {weights}: {one_line(e)}") from e
        if isinstance(state, dict) and isinstance(state.get("model", state.get("state_dict")), dict):
            state = state.get("model", state.get("state_dict"))
        if not isinstance(state, dict):
            raise CheckpointError(f"{weights}: expected a state dict of a torchvision {arch}")
        model = getattr(tvd, arch)(weights=None, weights_backbone=None, num_classes=num_classes)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"{weights}: the weights do not fit torchvision {arch} "
                                  f"(num_classes={num_classes}): {one_line(e)}") from e
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.person_label, self.score_thresh = person_label, score_thresh

    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame`` H x W x 3 (RGB uint8) -> person boxes N x 4 ``[x, y, w, h]``, scores N (best first)."""
        x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div(255).to(self.device)
        out = self.model([x])[0]
        keep = (out["labels"] == self.person_label) & (out["scores"] >= self.score_thresh)
        b = out["boxes"][keep].cpu().numpy().astype(np.float32)
        s = out["scores"][keep].cpu().numpy().astype(np.float32)
        order = np.argsort(-s, kind="stable")
        b, s = b[order], s[order]
        return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1).reshape(-1, 4), s
