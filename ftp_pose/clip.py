"""The frame layout of a clip: which frames around the key frame a sample holds, and where the key sits.

One owner for both sides: the data (:class:`ftp_pose.data.PoseTrackClipDataset` stacks the frames
in this order) and the model (``FTPPoseConfig.num_frames``; FTPPose reads the key frame at
``T // 2``). Neutral: imports nothing from the package, so ``data`` and ``models`` may both use it.

>>> ClipLayout((-1, 1)).frames, ClipLayout((-1, 1)).key_index
((-1, 0, 1), 1)
"""
from __future__ import annotations

from typing import Sequence


class ClipLayout:
    """The key frame (offset 0) and its neighbours at ``offsets`` (distinct, non-zero), sorted in time.

    Attributes:
        frames: sorted frame offsets including 0, e.g. ``(-1, 0, 1)``; a clip tensor is
            ``T x 3 x H x W`` with ``T = num_frames`` in this order.
        num_frames: ``T``.
        key_index: position of offset 0 in :attr:`frames`.
    """

    def __init__(self, offsets: Sequence[int]):
        neighbours = [int(o) for o in offsets]
        if 0 in neighbours or len(set(neighbours)) != len(neighbours):
            raise ValueError(f"offsets must be distinct and non-zero (the key frame is added), got {neighbours}")
        self.frames: tuple[int, ...] = tuple(sorted(neighbours + [0]))
        self.num_frames: int = len(self.frames)
        self.key_index: int = self.frames.index(0)

    @property
    def neighbours(self) -> tuple[int, ...]:
        """The offsets without the key frame (what a config's ``data.offsets`` lists)."""
        return tuple(o for o in self.frames if o != 0)

    @property
    def middle_key(self) -> bool:
        """Whether the key frame is at ``T // 2``, where FTPPose takes it."""
        return self.key_index == self.num_frames // 2

    def check_middle_key(self, where: str = "offsets") -> "ClipLayout":
        """Return self; ValueError naming ``where`` unless the key frame is the middle frame."""
        if not self.middle_key:
            raise ValueError(
                f"{where}: {list(self.neighbours)} puts the key frame at position {self.key_index} of "
                f"frames {list(self.frames)}, but the model reads the key frame in the middle (position "
                f"{self.num_frames // 2}); use offsets balanced around 0, e.g. [-1, 1]")
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClipLayout) and other.frames == self.frames

    def __hash__(self) -> int:
        return hash(self.frames)

    def __repr__(self) -> str:
        return f"ClipLayout(offsets={list(self.neighbours)})"
