"""PoseTrack annotations (COCO style, 2017 conversions / 2018 / 2021) and the 3-frame clip dataset.

Two layers:

* :func:`load_posetrack` reads one merged json, a directory of per-video jsons, or a list of
  files into a :class:`PoseTrackSet`: frames per video in temporal order, images by id, person
  annotations by image id, and the neighbour-frame rule of the method (a missing neighbour
  repeats the key frame).
* :class:`PoseTrackClipDataset` turns every person box of every labeled key frame into one
  sample: the same affine crop of ``T`` frames (``T x 3 x 256 x 192``), Gaussian heatmap targets of
  the key frame (``17 x 64 x 48``), and the metadata needed to map predictions back to the image.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ftp_pose.clip import ClipLayout
from ftp_pose.io import read_json
from ftp_pose.keypoints import LOWER_BODY_JOINTS, NUM_JOINTS, UPPER_BODY_JOINTS
from ftp_pose.data.clips import crop_clip, parse_box, read_rgb
from ftp_pose.data.detections import load_detections
from ftp_pose.data.heatmaps import HeatmapCodec, flip_permutation
from ftp_pose.data.transforms import affine_points, box_to_center_scale, compose_affine, flip_affine, get_affine_transform

#: ImageNet normalisation of RGB values in [0, 1].


# ----------------------------------------------------------------------------------------------
# annotations
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameInfo:
    """One listed image (frame) of a video."""
    image_id: int
    vid_id: str
    frame_index: int          #: index of the frame in its video (from the file name, e.g. 000012.jpg -> 12)
    frame_id: int             #: the file's ``frame_id`` (or ``id``), the temporal sort key
    file_name: str            #: relative to the image root
    width: int | None
    height: int | None
    is_labeled: bool
    nframes: int | None
    source: Path              #: the json file this frame came from


@dataclass(frozen=True)
class PersonAnnotation:
    """One annotated person in one frame."""
    ann_id: int
    image_id: int
    track_id: int             #: -1 when unknown
    keypoints: np.ndarray     #: float32 17 x 3 (x, y, v) in image pixels; v > 0 means labeled
    bbox: np.ndarray          #: float32 [4] x, y, w, h
    bbox_head: np.ndarray | None  #: float32 [4] x, y, w, h, or None
    source: Path

    @property
    def num_visible(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())


@dataclass
class PoseTrackSet:
    """A loaded PoseTrack annotation set.

    Attributes:
        images: image id -> :class:`FrameInfo`.
        videos: vid_id -> image ids in temporal order.
        annotations: image id -> list of :class:`PersonAnnotation` (empty list when none).
        source: the json files read, in order.
    """
    images: dict[int, FrameInfo] = field(default_factory=dict)
    videos: dict[str, list[int]] = field(default_factory=dict)
    annotations: dict[int, list[PersonAnnotation]] = field(default_factory=dict)
    source: list[Path] = field(default_factory=list)
    _by_index: dict[str, dict[int, int]] = field(default_factory=dict, repr=False)

    def labeled_image_ids(self) -> list[int]:
        """Ids of labeled frames, video by video in temporal order."""
        return [i for ids in self.videos.values() for i in ids if self.images[i].is_labeled]

    def all_image_ids(self) -> list[int]:
        return [i for ids in self.videos.values() for i in ids]

    @property
    def num_people(self) -> int:
        """Number of person annotations on labeled frames."""
        return sum(len(self.annotations.get(i, [])) for i in self.labeled_image_ids())

    def neighbour(self, image_id: int, offset: int) -> int:
        """Image id of the frame ``offset`` frames away from ``image_id`` in the same video.

        When that frame is outside the video (boundary) or not listed, the key frame itself is
        returned: the missing neighbour repeats the key frame (as the DCPose/DSTA loaders do).
        """
        info = self.images[image_id]
        return self._by_index[info.vid_id].get(info.frame_index + int(offset), image_id)

    def clip_ids(self, image_id: int, offsets: Sequence[int]) -> list[int]:
        """Image ids of the frames at ``offsets`` (must include 0 for the key frame)."""
        return [self.neighbour(image_id, o) for o in offsets]

    def image_path(self, image_id: int, image_root: str | Path) -> Path:
        return Path(image_root) / self.images[image_id].file_name

    def check_images(self, image_root: str | Path, labeled_only: bool = False) -> int:
        """Check that every listed (or labeled) frame's file exists under ``image_root``.

        Returns the number of files checked; raises FileNotFoundError listing the missing ones
        (first five), with the json that lists them.
        """
        ids = self.labeled_image_ids() if labeled_only else self.all_image_ids()
        missing = [i for i in ids if not self.image_path(i, image_root).is_file()]
        if missing:
            lines = [f"  {self.image_path(i, image_root)} (field 'file_name' of image {i} in "
                     f"{self.images[i].source})" for i in missing[:5]]
            more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise FileNotFoundError(f"{len(missing)} of {len(ids)} image files are missing under "
                                    f"{image_root}:\n" + "\n".join(lines) + more)
        return len(ids)

    def __repr__(self) -> str:
        return (f"PoseTrackSet({len(self.videos)} videos, {len(self.images)} frames "
                f"({len(self.labeled_image_ids())} labeled), {self.num_people} people, "
                f"from {len(self.source)} file(s))")


_DIGITS = re.compile(r"(\d+)$")


def _frame_index_from_name(file_name: str) -> int | None:
    m = _DIGITS.search(Path(file_name).stem)
    return int(m.group(1)) if m else None




def _box_from_keypoints(kpts: np.ndarray, margin: float = 0.15) -> np.ndarray | None:
    vis = kpts[:, 2] > 0
    if vis.sum() < 2:
        return None
    lo, hi = kpts[vis, :2].min(0), kpts[vis, :2].max(0)
    size = np.maximum(hi - lo, 1.0)
    lo, hi = lo - margin * size, hi + margin * size
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], dtype=np.float32)


def _ann_files(ann: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(ann, (str, Path)):
        p = Path(ann)
        if p.is_dir():
            files = sorted(p.glob("*.json"))
            if not files:
                raise FileNotFoundError(f"no .json annotation files in directory {p}")
            return files
        if not p.is_file():
            raise FileNotFoundError(f"annotation file not found: {p}")
        return [p]
    files: list[Path] = []
    for a in ann:
        files.extend(_ann_files(a))
    if not files:
        raise ValueError("load_posetrack: empty list of annotation files")
    return files


def _read_file(path: Path, pts: PoseTrackSet, frames: list[FrameInfo]) -> None:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a COCO-style object with 'images' and 'annotations', "
                         f"got {type(data).__name__}")
    for key in ("images", "annotations"):
        if key not in data:
            raise ValueError(f"{path}: missing field '{key}'")
        if not isinstance(data[key], list):
            raise ValueError(f"{path}: field '{key}' must be a list")
    ids_here: set[int] = set()
    for n, im in enumerate(data["images"]):
        where = f"{path}: images[{n}]"
        if not isinstance(im, dict):
            raise ValueError(f"{where} is not an object")
        if "file_name" not in im:
            raise ValueError(f"{where} has no field 'file_name'")
        raw_id = im.get("id", im.get("frame_id"))
        if raw_id is None:
            raise ValueError(f"{where} has neither field 'id' nor 'frame_id'")
        try:
            image_id = int(raw_id)
            frame_id = int(im.get("frame_id", raw_id))
        except (TypeError, ValueError):
            raise ValueError(f"{where}: field 'id'/'frame_id' is not an integer: {raw_id!r}") from None
        if image_id in pts.images or image_id in ids_here:
            other = pts.images[image_id].source if image_id in pts.images else path
            raise ValueError(f"{where}: field 'id' {image_id} is listed twice (also in {other})")
        ids_here.add(image_id)
        file_name = str(im["file_name"])
        vid_id = str(im["vid_id"]) if "vid_id" in im else Path(file_name).parent.name
        idx = _frame_index_from_name(file_name)
        frames.append(FrameInfo(
            image_id=image_id, vid_id=vid_id, frame_index=-1 if idx is None else idx, frame_id=frame_id,
            file_name=file_name, width=int(im["width"]) if "width" in im else None,
            height=int(im["height"]) if "height" in im else None,
            is_labeled=bool(im.get("is_labeled", True)),
            nframes=int(im["nframes"]) if "nframes" in im else None, source=path))
        pts.images[image_id] = frames[-1]
    for n, a in enumerate(data["annotations"]):
        where = f"{path}: annotations[{n}]"
        if not isinstance(a, dict):
            raise ValueError(f"{where} is not an object")
        if "image_id" not in a:
            raise ValueError(f"{where} has no field 'image_id'")
        image_id = int(a["image_id"])
        if image_id not in ids_here:
            raise ValueError(f"{where}: field 'image_id' {image_id} is not listed in 'images' of this file")
        where = f"{path}: annotations[{n}] (id {a.get('id', '?')}, image_id {image_id})"
        if "keypoints" not in a:
            raise ValueError(f"{where} has no field 'keypoints'")
        try:
            kpts = np.asarray(a["keypoints"], dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: field 'keypoints' is not numeric") from None
        if kpts.size != NUM_JOINTS * 3:
            raise ValueError(f"{where}: field 'keypoints' must hold {NUM_JOINTS} x 3 = {NUM_JOINTS * 3} "
                             f"numbers (x, y, v per joint), got {kpts.size} (shape {kpts.shape})")
        kpts = kpts.reshape(NUM_JOINTS, 3)
        if a.get("bbox") is not None:
            box = parse_box(a["bbox"], where, "bbox")
        else:
            box = _box_from_keypoints(kpts)
            if box is None:
                continue  # no box and fewer than 2 labeled joints: nothing to crop
        head = parse_box(a["bbox_head"], where, "bbox_head") if a.get("bbox_head") is not None else None
        pts.annotations.setdefault(image_id, []).append(PersonAnnotation(
            ann_id=int(a.get("id", -1)), image_id=image_id, track_id=int(a.get("track_id", -1)),
            keypoints=kpts, bbox=box, bbox_head=head, source=path))


def load_posetrack(ann: str | Path | Sequence[str | Path], require_labels: bool = True) -> PoseTrackSet:
    """Read PoseTrack annotations.

    Args:
        ann: one COCO-style json (2018/2021 layout, or the COCO conversion of 2017), a directory of
            per-video jsons (all merged), or a list of files/directories.
        require_labels: every video must have at least one labeled frame (``is_labeled``).
    Returns:
        :class:`PoseTrackSet`. A frame's index in its video comes from the digits ending its file
        name (PoseTrack's ``000012.jpg``); names without digits fall back to the frame's rank by
        ``frame_id``.
    Raises:
        FileNotFoundError / ValueError naming the file and the field: malformed json, keypoints
        not 17 x 3, zero-size or negative box, duplicate ids, unknown ``image_id``, a video with no
        labeled frame.
    """
    files = _ann_files(ann)
    pts = PoseTrackSet(source=files)
    frames: list[FrameInfo] = []
    for f in files:
        _read_file(f, pts, frames)
    by_video: dict[str, list[FrameInfo]] = {}
    for fr in frames:
        by_video.setdefault(fr.vid_id, []).append(fr)
    for vid, frs in by_video.items():
        frs.sort(key=lambda f: (f.frame_id, f.image_id))
        if any(f.frame_index < 0 for f in frs):  # no digits in the names: rank by frame_id
            frs = [FrameInfo(**{**f.__dict__, "frame_index": k}) for k, f in enumerate(frs)]
            for f in frs:
                pts.images[f.image_id] = f
        frs.sort(key=lambda f: (f.frame_index, f.frame_id))
        index: dict[int, int] = {}
        for f in frs:
            if f.frame_index in index:
                raise ValueError(f"{f.source}: video {vid!r} lists frame index {f.frame_index} twice "
                                 f"(field 'file_name' {f.file_name!r}, image ids {index[f.frame_index]} "
                                 f"and {f.image_id})")
            index[f.frame_index] = f.image_id
        if require_labels and not any(f.is_labeled for f in frs):
            raise ValueError(f"{frs[0].source}: video {vid!r} has no labeled frame "
                             f"(field 'is_labeled' is false for all {len(frs)} frames)")
        pts.videos[vid] = [f.image_id for f in frs]
        pts._by_index[vid] = index
    for image_id in pts.images:
        pts.annotations.setdefault(image_id, [])
    return pts


# ----------------------------------------------------------------------------------------------
# dataset (frames, crops and normalisation: ftp_pose.data.clips)
# ----------------------------------------------------------------------------------------------
@dataclass
class AugmentConfig:
    """Train-time augmentation, HRNet/DCPose values (the TDMI/DCPose PoseTrack recipe).

    * scale: ``s *= clip(N(0,1) * scale_factor + 1, 1 - scale_factor, 1 + scale_factor)``
    * rotation: with probability ``rot_prob``, ``clip(N(0,1) * rotation_factor, -2rf, 2rf)`` degrees
    * flip: with probability ``flip_prob`` (when ``flip``), mirror the crop and swap left/right joints
    * half body: with probability ``half_body_prob``, when more than ``half_body_min_joints``
      joints are visible, crop the upper or the lower body only (box of those joints x 1.5).
    """
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rot_prob: float = 0.6
    flip: bool = True
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8


@dataclass(frozen=True)
class _Item:
    image_id: int
    box: np.ndarray
    score: float
    track_id: int
    joints: np.ndarray | None  # 17 x 3 image coords, None in det mode


class PoseTrackClipDataset(Dataset):
    """Top-down clip samples: one per person box on a labeled key frame.

    Args:
        ann: annotation json, per-video directory or list (see :func:`load_posetrack`), or a
            loaded :class:`PoseTrackSet`.
        image_root: folder the images' ``file_name`` are relative to.
        boxes: ``"gt"`` (ground-truth boxes) or a path to a COCO-results detection json.
        train: apply augmentation, and keep only people with ``>= min_visible_joints`` joints.
        offsets: neighbour frame offsets (0 = key frame, added automatically). Default t-1, t+1.
        input_size, heatmap_size: ``(H, W)``.
        sigma: heatmap Gaussian sigma (heatmap pixels).
        box_enlarge: crop = box (aspect fixed) x this.
        det_score_thresh: minimum detection score in det mode.
        aug: augmentation (None = :class:`AugmentConfig` defaults when ``train``; ignored otherwise).
        min_visible_joints: train-mode person filter.
        frames: ``"labeled"`` (key frames are the labeled frames) or ``"all"`` (every listed frame;
            det mode on unlabeled videos).

    Item (a dict, collatable by the default collate):
        ``clip`` float32 ``T x 3 x H x W`` (ImageNet-normalised RGB, frames in offset order,
        key at ``meta["key_index"]``), ``heatmaps`` float32 ``17 x h x w``, ``target_weight``
        float32 ``17``, ``meta`` (see :meth:`__getitem__`).
    """

    def __init__(self, ann: str | Path | Sequence[str | Path] | PoseTrackSet, image_root: str | Path, *,
                 boxes: str | Path = "gt", train: bool = False, offsets: Sequence[int] = (-1, 1),
                 input_size: tuple[int, int] = (256, 192), heatmap_size: tuple[int, int] = (64, 48),
                 sigma: float = 2.0, box_enlarge: float = 1.25, det_score_thresh: float = 0.2,
                 aug: AugmentConfig | None = None, min_visible_joints: int = 1, frames: str = "labeled") -> None:
        #: the clip's frames (sorted offsets incl. the key frame 0) and where the key sits
        self.layout = ClipLayout(offsets)
        if frames not in ("labeled", "all"):
            raise ValueError(f"frames must be 'labeled' or 'all', got {frames!r}")
        self.offsets: list[int] = list(self.layout.frames)
        self.key_index: int = self.layout.key_index
        self.image_root = Path(image_root)
        self.train = bool(train)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        #: targets of this dataset's crops (and their decoding back to crop / image pixels)
        self.codec = HeatmapCodec(self.input_size, self.heatmap_size, self.sigma)
        self.box_enlarge = float(box_enlarge)
        self.aug = (aug or AugmentConfig()) if self.train else None
        self.boxes = boxes
        if isinstance(ann, PoseTrackSet):
            self.set = ann
        else:
            self.set = load_posetrack(ann, require_labels=(frames == "labeled"))
        key_ids = self.set.labeled_image_ids() if frames == "labeled" else self.set.all_image_ids()
        self.items: list[_Item] = []
        if isinstance(boxes, str) and boxes == "gt":
            for image_id in key_ids:
                for a in self.set.annotations[image_id]:
                    if self.train and a.num_visible < min_visible_joints:
                        continue
                    self.items.append(_Item(image_id, a.bbox, 1.0, a.track_id, a.keypoints))
        else:
            dets = load_detections(boxes, image_ids=set(key_ids), score_thresh=det_score_thresh)
            for image_id in key_ids:
                for box, score in dets.get(image_id, []):
                    self.items.append(_Item(image_id, box, float(score), -1, None))
        self._perm = flip_permutation(NUM_JOINTS)

    def __len__(self) -> int:
        return len(self.items)

    # -- augmentation ------------------------------------------------------------------------
    def _half_body(self, joints: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        vis = joints[:, 2] > 0
        upper = [j for j in UPPER_BODY_JOINTS if vis[j]]
        lower = [j for j in LOWER_BODY_JOINTS if vis[j]]
        chosen = upper if (rng.random() < 0.5 and len(upper) > 2) else lower
        if len(chosen) < 2:
            chosen = upper if len(upper) >= 2 else []
        if len(chosen) < 2:
            return None
        pts = joints[chosen, :2]
        lo, hi = pts.min(0), pts.max(0)
        w, h = float(hi[0] - lo[0]), float(hi[1] - lo[1])
        aspect = self.input_size[1] / self.input_size[0]
        center = pts.mean(0).astype(np.float32)
        if w > aspect * h:
            h = w / aspect
        else:
            w = h * aspect
        return center, np.array([w, h], np.float32) * 1.5

    def _sample_transform(self, item: _Item, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, float, bool]:
        aspect = self.input_size[1] / self.input_size[0]
        center, scale = box_to_center_scale(item.box, aspect=aspect, enlarge=self.box_enlarge)
        rot, flipped = 0.0, False
        a = self.aug
        if a is not None and rng is not None:
            joints = item.joints
            if (joints is not None and a.half_body_prob > 0 and (joints[:, 2] > 0).sum() > a.half_body_min_joints
                    and rng.random() < a.half_body_prob):
                hb = self._half_body(joints, rng)
                if hb is not None:
                    center, scale = hb
            sf, rf = a.scale_factor, a.rotation_factor
            scale = scale * float(np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf))
            if rng.random() < a.rot_prob:
                rot = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
            flipped = bool(a.flip and rng.random() < a.flip_prob)
        return center.astype(np.float32), scale.astype(np.float32), rot, flipped

    # -- item --------------------------------------------------------------------------------
    def _load_frames(self, ids: list[int]) -> list[np.ndarray]:
        cache: dict[int, np.ndarray] = {}
        for i in ids:
            if i not in cache:
                info = self.set.images[i]
                cache[i] = read_rgb(self.set.image_path(i, self.image_root),
                                    f" (field 'file_name' of image {i} in {info.source})")
        return [cache[i] for i in ids]

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One sample.

        ``meta`` holds: ``image_id`` int, ``vid_id`` str, ``frame_index`` int, ``track_id`` int
        (-1 unknown), ``box`` float32 [4] xywh (image), ``box_score`` float (1.0 for gt),
        ``center`` float32 [2], ``scale`` float32 [2] (crop w, h in image pixels), ``rotation``
        float (degrees), ``flipped`` bool, ``affine`` float32 2 x 3 (image -> input crop, flip
        included), ``joints`` float32 17 x 3 (gt keypoints in image pixels, original left/right
        order; zeros in det mode), ``file_name`` str, ``key_index`` int.
        """
        item = self.items[index]
        rng = None
        if self.aug is not None:  # seeded from torch's RNG, so torch.manual_seed / worker seeds rule
            rng = np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, ()).item()))
        center, scale, rot, flipped = self._sample_transform(item, rng)
        in_h, in_w = self.input_size
        m = get_affine_transform(center, scale, rot, (in_w, in_h))
        if flipped:
            m = compose_affine(flip_affine(in_w), m)
        ids = self.set.clip_ids(item.image_id, self.offsets)
        clip = crop_clip(self._load_frames(ids), m, self.input_size)

        joints = item.joints if item.joints is not None else np.zeros((NUM_JOINTS, 3), np.float32)
        xy = affine_points(joints[:, :2], m)
        vis = (joints[:, 2] > 0).astype(np.float32)
        if flipped:
            xy, vis = xy[self._perm], vis[self._perm]
        heatmaps, weights = self.codec.encode(xy, vis)
        info = self.set.images[item.image_id]
        meta = {
            "image_id": int(item.image_id),
            "vid_id": info.vid_id,
            "frame_index": int(info.frame_index),
            "track_id": int(item.track_id),
            "box": torch.as_tensor(np.asarray(item.box, np.float32)),
            "box_score": float(item.score),
            "center": torch.as_tensor(center),
            "scale": torch.as_tensor(scale),
            "rotation": float(rot),
            "flipped": bool(flipped),
            "affine": torch.as_tensor(m),
            "joints": torch.as_tensor(np.asarray(joints, np.float32)),
            "file_name": info.file_name,
            "key_index": int(self.key_index),
        }
        return {
            "clip": clip,
            "heatmaps": torch.from_numpy(heatmaps),
            "target_weight": torch.from_numpy(weights),
            "meta": meta,
        }
