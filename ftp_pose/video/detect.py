"""Person detectors for the demo when no ``--boxes`` are given.

* :class:`HOGPeopleDetector` (default, offline, no weights to fetch): OpenCV's Dalal-Triggs HOG
  people detector (``cv2.HOGDescriptor`` with its default INRIA people SVM, ``detectMultiScale``;
  OpenCV 5 ships it in the contrib build, ``opencv-contrib-python-headless``). The frame is resized
  to ``width`` pixels first (speed; the 64 x 128 window then fits people of about 130+ pixels in a
  1280-wide frame), and OpenCV groups the overlapping windows (``group_threshold``).
* :class:`TorchvisionPersonDetector`: a torchvision detection model (``fasterrcnn_resnet50_fpn`` by
  default) loaded from a weights file given on the command line; never downloads anything.

Both map an RGB uint8 frame ``H x W x 3`` to ``(boxes N x 4 float32 [x, y, w, h] in frame pixels,
scores N float32)``, best first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from ftp_pose.errors import CheckpointError, MissingFileError, one_line


class PersonDetector(Protocol):
    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class HOGPeopleDetector:
    """OpenCV's HOG people detector (``cv2.HOGDescriptor.detectMultiScale``) on a resized frame.

    ``width``: the frame is resized (INTER_AREA) to this width first (None or a narrower frame: as
    is); ``win_stride``, ``padding``, ``scale``, ``hit_threshold``, ``group_threshold``: passed to
    ``detectMultiScale`` (a box needs more than ``group_threshold`` overlapping windows). Defaults
    chosen on OpenPose's 1280 x 720 street video (several people walking): about 5 people per frame.
    """

    def __init__(self, width: int | None = 640, win_stride: int = 8, padding: int = 8, scale: float = 1.05,
                 hit_threshold: float = 0.0, group_threshold: int = 1):
        if not hasattr(cv2, "HOGDescriptor"):
            raise ImportError(f"OpenCV {cv2.__version__} has no HOGDescriptor: OpenCV 5 ships it in the contrib "
                              "build (pip install opencv-contrib-python-headless, the version pyproject.toml pins)")
        if scale <= 1.0:
            raise ValueError(f"scale must be > 1, got {scale}")
        self.width, self.win_stride, self.padding, self.scale = width, win_stride, padding, scale
        self.hit_threshold, self.group_threshold = hit_threshold, group_threshold
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame`` H x W x 3 (RGB uint8) -> boxes N x 4 ``[x, y, w, h]`` in frame pixels, scores N (best first)."""
        H, W = frame.shape[:2]
        s = 1.0 if not self.width or W <= self.width else self.width / W
        img = cv2.resize(frame, (round(W * s), round(H * s)), interpolation=cv2.INTER_AREA) if s != 1.0 else frame
        rects, weights = self.hog.detectMultiScale(
            img, hitThreshold=self.hit_threshold, winStride=(self.win_stride, self.win_stride),
            padding=(self.padding, self.padding), scale=self.scale, groupThreshold=self.group_threshold)
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        b = np.asarray(rects, np.float32).reshape(-1, 4) / s
        sc = np.asarray(weights, np.float32).reshape(-1)
        order = np.argsort(-sc, kind="stable")
        return _clip_boxes(b[order], W, H).astype(np.float32), sc[order]


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
