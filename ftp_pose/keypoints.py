"""Keypoint conventions of PoseTrack (COCO-style files of 2017/2018/2021), defined once.

PoseTrack annotates 17 keypoints in the COCO slot order, but slots 1 and 2 hold
``head_bottom`` (the neck) and ``head_top`` instead of the COCO eyes, and the two ear
slots are always empty. Every module of the package (data, metrics, viz) reads the
joint order, skeleton and flip pairs from here.
"""
from __future__ import annotations

NUM_JOINTS: int = 17

JOINT_NAMES: tuple[str, ...] = (
    "nose", "head_bottom", "head_top", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

#: Pairs of joints (0-based) swapped by a horizontal flip.
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)

#: Limbs as 0-based joint pairs (the PoseTrack file's 1-based ``skeleton`` minus one).
SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

#: Joints of the upper body (used by half-body augmentation).
UPPER_BODY_JOINTS: tuple[int, ...] = tuple(range(0, 11))
LOWER_BODY_JOINTS: tuple[int, ...] = tuple(range(11, 17))

#: Loss weight per joint (DCPose on PoseTrack: 1.2 for elbows/knees, 1.5 for wrists/ankles).
JOINT_LOSS_WEIGHTS: tuple[float, ...] = (
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5,
)

#: OKS sigma per joint (OKS-NMS of detector-box predictions), from mmpose's PoseTrack18 metadata
#: (``configs/_base_/datasets/posetrack18.py``): COCO's sigmas slot by slot, so head_bottom and
#: head_top take the COCO eye values (.025) and the empty ear slots keep .035.
OKS_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)

#: The 15 joints the official ``poseval`` tool evaluates (ears are never annotated),
#: as indices into :data:`JOINT_NAMES`.
EVAL_JOINTS: tuple[int, ...] = (0, 1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)

#: Table I columns of the paper: group name -> joints (indices into JOINT_NAMES).
#: Head is the mean of head top, neck (head bottom) and nose, as in poseval.
AP_GROUPS: dict[str, tuple[int, ...]] = {
    "Head": (2, 1, 0),
    "Shoulder": (5, 6),
    "Elbow": (7, 8),
    "Wrist": (9, 10),
    "Hip": (11, 12),
    "Knee": (13, 14),
    "Ankle": (15, 16),
}

#: Colours (RGB, 0-255) for drawing: left side, right side, centre.
LEFT_COLOR = (0, 160, 255)
RIGHT_COLOR = (255, 90, 40)
CENTER_COLOR = (80, 220, 80)


def joint_side(j: int) -> str:
    """Return ``"left"``, ``"right"`` or ``"center"`` for joint index ``j``."""
    name = JOINT_NAMES[j]
    if name.startswith("left"):
        return "left"
    if name.startswith("right"):
        return "right"
    return "center"
