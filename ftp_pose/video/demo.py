"""Demo: ``python -m ftp_pose demo VIDEO --checkpoint CKPT [--boxes boxes.json | --detector ...] [--out DIR]``.

``VIDEO`` is a video file OpenCV can read (mp4, avi, ...) or a folder of frames (``*.jpg``/``*.png``,
sorted by name). Every frame t is the key frame of a clip (t-1, t, t+1 by default, from the
checkpoint's config; at the ends the missing neighbour repeats the key frame).

The demo is a short pipeline of named steps, each a small function that can be used (and tested)
alone:

1. **read**: :func:`open_frames` (a lazy iterator over the frames) and :func:`clip_windows` (each
   key frame with the frames of its clip, as soon as they are read);
2. **detect** and 3. **track**: :class:`PeopleStep` (the people of a key frame: ``--boxes``, or the
   detector every ``--detect-every`` frames with the IoU tracker carrying the boxes in between);
4. **crop**: :func:`crop_people` (one normalised ``T x 3 x H x W`` clip per person);
5. **infer**: :func:`infer_poses` (the poses of a batch of key frames);
6. **draw**: :func:`draw_key_frame` (skeletons, optionally the kept tokens);
7. **write**: :class:`DemoWriter` (the annotated video, PNG frames and the prediction json).

Streaming: only the clip window (3 frames by default) and one batch of ``--batch`` key frames are
held at once, so memory does not grow with the length of the video (the prediction json, a few
hundred bytes per person, is kept until the end).

Person boxes:

* ``--boxes FILE``: a json list in the COCO results format, ``[{"frame_index" or "image_id", "bbox":
  [x, y, w, h], "score", optional "track_id"}, ...]``. ``frame_index`` is the 0-based position of the
  frame in the video (or in the sorted folder). Without it, ``image_id`` is used: as the frame index
  when every id is a valid index, otherwise the sorted distinct ids are taken as the frames in order
  (PoseTrack ids such as 10000010000 work that way). Boxes under ``--score-thresh`` are skipped.
* no ``--boxes``: a person detector (``--detector``) on every ``--detect-every``-th frame:

  - ``hog`` (default, offline): OpenCV's HOG people detector (:class:`ftp_pose.video.detect.HOGPeopleDetector`);
  - ``torchvision``: a torchvision detection model from ``--detector-weights PATH`` (architecture
    ``--detector-arch``, default ``fasterrcnn_resnet50_fpn``); nothing is downloaded;
  - ``none``: one box covering the whole frame (a single, roughly centred person).

Boxes without a ``track_id`` get one from greedy IoU tracking across frames
(:class:`ftp_pose.video.tracking.IoUTracker`), so a person keeps its id from frame to frame; between
two detections the tracker moves each box at its track's velocity.

Writes, in ``DIR``: ``annotated.mp4`` (cv2.VideoWriter, 'mp4v'), PNG frames ``frame_XXXXXX.png``
(the first, middle and last frame) with skeletons, and ``<video name>.json``: PoseTrack-format
predictions (one image per frame, ``id`` = frame index; per person ``bbox``, ``keypoints``,
``scores``, ``score``, ``track_id``), written by :func:`ftp_pose.metrics.posetrack_io.write_posetrack_predictions`.
Nothing is written when the video turns out unreadable or truncated. ``--show-tokens`` also marks
the tokens each branch kept: small dots at the kept high-resolution grid positions (64 x 48 grid)
and squares at the kept low-resolution cells (16 x 12 patches) of the key frame.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np
import torch

from ftp_pose.clip import ClipLayout
from ftp_pose.data.clips import box_affine, clip_frame_ids, crop_clip, read_rgb
from ftp_pose.errors import MissingFileError, UnreadableFileError

_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


# ------------------------------------------------------------------------------------------- data
@dataclass
class Person:
    """One person of a key frame: ``box`` 4 ``[x, y, w, h]`` in frame pixels, detector ``score``,
    ``track_id`` (-1 when none)."""
    box: np.ndarray
    score: float
    track_id: int


@dataclass
class KeyFrame:
    """A key frame on its way through the pipeline.

    ``canvas``: H x W x 3 RGB copy of frame ``t`` (drawn on); ``clips``: per person ``T x 3 x h x w``;
    ``affines``: per person the 2 x 3 image -> input affine; ``preds``: per person a prediction dict
    (after :func:`infer_poses`); ``tokens``: per person ``(dots K x 2, squares M x 2 x 2)`` in frame
    pixels (``--show-tokens`` only).
    """
    t: int
    canvas: np.ndarray
    people: list[Person]
    clips: list[torch.Tensor] = field(default_factory=list)
    affines: list[np.ndarray] = field(default_factory=list)
    preds: list[dict] = field(default_factory=list)
    tokens: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- 1. read
def _decodable_frames(path: Path, limit: int | None) -> int:
    """How many frames of ``path`` OpenCV can decode (at most ``limit``)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while (limit is None or n < limit) and cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def open_frames(source: str | Path, max_frames: int | None = None) -> tuple[Iterator[np.ndarray], float, int]:
    """A lazy iterator over the RGB uint8 frames (H x W x 3) of a video file or a folder of images,
    the frame rate and the number of frames (at most ``max_frames``).

    Problems are found before the first frame is asked for: MissingFileError for a missing path,
    UnreadableFileError for a file OpenCV cannot decode, a folder without images, or a truncated
    video (fewer decodable frames than its header announces; a header count estimated from the
    duration may be one frame off, which passes). A video file is decoded once up front to count
    its frames (far faster than the pose model).
    """
    source = Path(source)
    if not source.exists():
        raise MissingFileError(f"video not found: {source}")
    limit = max_frames
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in _IMAGE_EXT)[:limit]
        if not files:
            raise UnreadableFileError(f"no image frames ({', '.join(_IMAGE_EXT)}) in folder {source}")

        def folder() -> Iterator[np.ndarray]:
            for p in files:
                yield read_rgb(p)
        return folder(), 25.0, len(files)
    cap = cv2.VideoCapture(str(source))
    ok, first = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise UnreadableFileError(f"cannot read video {source}: OpenCV could not decode a frame (not a video, "
                                  f"an unsupported codec, or a file cut before its index)")
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    fps = fps if np.isfinite(fps) and fps > 0 else 25.0
    header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    count = _decodable_frames(source, limit)
    want = header if limit is None else min(header, limit)
    if count < want - 1:
        cap.release()
        raise UnreadableFileError(f"video {source} is truncated or damaged: {count} of the {header} frames its "
                                  f"header announces could be read (--max-frames {count} annotates those)")

    def video() -> Iterator[np.ndarray]:
        try:
            img, n = first, 0
            while img is not None and n < count:
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                n += 1
                ok, img = cap.read()
                img = img if ok else None
        finally:
            cap.release()
    return video(), fps, count


def clip_windows(frames: Iterable[np.ndarray], layout: ClipLayout) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
    """``(t, window)`` for every key frame ``t`` in order, as soon as the frames of its clip are read.

    ``window`` maps frame indices to the frames the clip of ``t`` can use (``t + o`` for the offsets
    ``o`` of ``layout`` that exist; a video end leaves its side out). Only the frames that the
    coming clips still need are held.
    """
    before, after = -layout.frames[0], layout.frames[-1]
    held: dict[int, np.ndarray] = {}
    t = 0

    def window() -> dict[int, np.ndarray]:
        return {i: held[i] for i in range(t - before, t + after + 1) if i in held}

    for i, frame in enumerate(frames):
        held[i] = frame
        while t + after <= i:
            yield t, window()
            t += 1
            for old in [k for k in held if k < t - before]:
                del held[old]
    while t in held:  # the last key frames: their later neighbours do not exist
        yield t, window()
        t += 1


# ------------------------------------------------------------------------------------------- 2-3. detect, track
def detect_people(frame: np.ndarray, detector: Callable | None) -> tuple[np.ndarray, np.ndarray]:
    """``detector(frame)`` as ``(boxes N x 4 float32 [x, y, w, h], scores N float32)``; ``None``: the whole frame."""
    if detector is None:
        H, W = frame.shape[:2]
        return np.array([[0, 0, W, H]], np.float32), np.ones(1, np.float32)
    b, s = detector(frame)
    return np.asarray(b, np.float32).reshape(-1, 4), np.asarray(s, np.float32).reshape(-1)


def _inside(boxes: np.ndarray, W: int, H: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``N x 4 [x, y, w, h]`` clipped to the frame, and the mask of those still over 1 pixel wide and high."""
    x1, y1 = np.clip(boxes[:, 0], 0, W), np.clip(boxes[:, 1], 0, H)
    x2, y2 = np.clip(boxes[:, 0] + boxes[:, 2], 0, W), np.clip(boxes[:, 1] + boxes[:, 3], 0, H)
    out = np.stack([x1, y1, x2 - x1, y2 - y1], 1).astype(np.float32)
    return out, (out[:, 2] > 1) & (out[:, 3] > 1)


class PeopleStep:
    """The detect and track steps: ``(t, frame) -> [Person]`` for the key frames in order.

    With ``boxes`` (``{t: [(box, score, track_id or None)]}``, from ``--boxes``) those are the people;
    boxes without track ids get them from the tracker. Otherwise ``detector`` (``frame -> (boxes N x 4,
    scores N)``, or None for the whole frame) runs on frames 0, N, 2N, ... (``every`` = N) and the
    tracker (:class:`ftp_pose.video.tracking.IoUTracker`) carries its boxes, moved at each track's
    velocity, through the frames in between (clipped to the frame; a box that leaves it is dropped).
    """

    def __init__(self, detector: Callable | None = None, *, boxes: dict[int, list] | None = None, every: int = 1,
                 tracker: Any = None):
        from ftp_pose.video.tracking import IoUTracker

        if every < 1:
            raise ValueError(f"detect every N frames needs N >= 1, got {every}")
        self.detector, self.boxes, self.every = detector, boxes, every
        self.tracker = tracker if tracker is not None else IoUTracker()
        self.last: int | None = None  # the last frame the tracker was updated on
        self.scores: dict[int, float] = {}  # track id -> its score at the last detection

    def _track(self, t: int, boxes: np.ndarray) -> list[int]:
        ids = self.tracker.update(boxes, frames=t - self.last if self.last is not None else 1)
        self.last = t
        return ids

    def __call__(self, t: int, frame: np.ndarray) -> list[Person]:
        if self.boxes is not None:
            found = self.boxes.get(t, [])
            if found and all(tid is None for _, _, tid in found):
                ids = self._track(t, np.stack([b for b, _, _ in found]))
                found = [(b, s, i) for (b, s, _), i in zip(found, ids)]
            return [Person(np.asarray(b, np.float32), float(s), int(i) if i is not None else -1) for b, s, i in found]
        H, W = frame.shape[:2]
        if self.last is None or t - self.last >= self.every:
            boxes, scores = detect_people(frame, self.detector)
            ids = self._track(t, boxes)
            self.scores = dict(zip(ids, scores.tolist()))
        else:
            carried, ids = self.tracker.carry(t - self.last)
            boxes = carried.astype(np.float32)
            scores = np.array([self.scores[i] for i in ids], np.float32)
        boxes, keep = _inside(boxes, W, H)
        return [Person(boxes[k], float(scores[k]), int(ids[k])) for k in np.flatnonzero(keep)]


# ------------------------------------------------------------------------------------------- 4. crop
def make_clip(window: dict[int, np.ndarray], t: int, box: np.ndarray, layout: ClipLayout,
              input_size: tuple[int, int], enlarge: float = 1.25) -> tuple[torch.Tensor, np.ndarray]:
    """The ``T x 3 x H x W`` normalised clip of the box in frame ``t`` and its image -> input affine (2 x 3).

    ``window`` maps frame indices to frames (at least ``t``); a missing neighbour repeats frame ``t``.
    """
    m = box_affine(box, input_size, enlarge)
    return crop_clip([window[i] for i in clip_frame_ids(t, layout, window.__contains__)], m, input_size), m


def crop_people(t: int, window: dict[int, np.ndarray], people: list[Person], layout: ClipLayout,
                input_size: tuple[int, int], enlarge: float = 1.25) -> KeyFrame:
    """The key frame ``t`` with one clip (and affine) per person, and a copy of frame ``t`` to draw on."""
    kf = KeyFrame(t, window[t].copy(), people)
    for p in people:
        clip, m = make_clip(window, t, p.box, layout, input_size, enlarge)
        kf.clips.append(clip)
        kf.affines.append(m)
    return kf


# ------------------------------------------------------------------------------------------- 5. infer
def token_marks(info: dict, b: int, inv: np.ndarray, key_index: int, input_size: tuple[int, int],
                heatmap_size: tuple[int, int], patch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Kept tokens of batch item ``b`` in frame pixels (``inv``: its input -> image affine): HR grid
    positions ``K x 2`` and key-frame LR cells as corner pairs ``M x 2 x 2``."""
    from ftp_pose.data import affine_points, heatmap_to_input

    h, w = heatmap_size
    dots, squares = np.zeros((0, 2), np.float32), np.zeros((0, 2, 2), np.float32)
    if info.get("kept_index_h") is not None:
        idx = info["kept_index_h"][b].detach().cpu().numpy().astype(np.int64)
        hm_xy = np.stack([idx % w, idx // w], 1).astype(np.float32)
        dots = affine_points(heatmap_to_input(hm_xy, input_size, heatmap_size), inv).reshape(-1, 2)
    if info.get("kept_index_l") is not None:
        gh, gw = input_size[0] // patch, input_size[1] // patch
        idx = info["kept_index_l"][b].detach().cpu().numpy().astype(np.int64)
        idx = idx[idx // (gh * gw) == key_index] % (gh * gw)
        x0, y0 = (idx % gw) * patch, (idx // gw) * patch
        corners = np.stack([np.stack([x0, y0], 1), np.stack([x0 + patch - 1, y0 + patch - 1], 1)], 1)
        squares = affine_points(corners.reshape(-1, 2).astype(np.float32), inv).reshape(-1, 2, 2)
    return dots, squares


def infer_poses(net: Callable, batch: list[KeyFrame], *, input_size: tuple[int, int],
                heatmap_size: tuple[int, int], key_index: int, device: torch.device | str = "cpu",
                max_people_per_pass: int = 64, flip_test: bool = False, show_tokens: bool = False) -> None:
    """Poses of every person of the key frames of ``batch`` (``max_people_per_pass`` clips per forward
    pass), stored in each key frame's ``preds`` (and ``tokens`` with ``show_tokens``)."""
    from ftp_pose.data import invert_affine
    from ftp_pose.engine.inference import heatmaps_to_predictions, predict_heatmaps

    items = [(kf, k) for kf in batch for k in range(len(kf.people))]
    for lo in range(0, len(items), max_people_per_pass):
        chunk = items[lo:lo + max_people_per_pass]
        clips = torch.stack([kf.clips[k] for kf, k in chunk]).to(device)
        info = None
        if show_tokens:
            try:
                _, info = net(clips, return_info=True)
            except TypeError:
                info = None  # a model without token info: skeletons only
        hm = predict_heatmaps(net, clips, flip_test=flip_test)
        metas = [{"image_id": kf.t, "affine": kf.affines[k], "box": kf.people[k].box,
                  "box_score": kf.people[k].score, "track_id": kf.people[k].track_id} for kf, k in chunk]
        preds = heatmaps_to_predictions(hm, metas, input_size=input_size, heatmap_size=heatmap_size)
        for b, ((kf, k), pred) in enumerate(zip(chunk, preds)):
            pred["bbox"] = pred.pop("box")
            kf.preds.append(pred)
            if info is not None:
                kf.tokens.append(token_marks(info, b, invert_affine(kf.affines[k]), key_index, input_size,
                                             heatmap_size))


# ------------------------------------------------------------------------------------------- 6. draw
def draw_key_frame(kf: KeyFrame, thresh: float = 0.2) -> np.ndarray:
    """Draw the kept tokens (dots, squares) and the skeletons of ``kf.preds`` onto ``kf.canvas``; returns it."""
    from ftp_pose.viz.skeleton import draw_skeleton

    img = kf.canvas
    for dots, squares in kf.tokens:
        for x, y in dots:
            cv2.circle(img, (int(x), int(y)), 1, (255, 230, 0), -1)
        for (x0, y0), (x1, y1) in squares:
            cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), (0, 255, 255), 1)
    for pred in kf.preds:
        kpts = np.asarray(pred["keypoints"], np.float32)
        img[...] = draw_skeleton(img, kpts[:, :2], scores=kpts[:, 2], thresh=thresh)
    return img


# ------------------------------------------------------------------------------------------- 7. write
class _VideoSink:
    """Writes RGB frames one by one to an mp4 ('mp4v'); the writer opens on the first frame."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps, self.writer, self.n = path, fps, None, 0

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise OSError(f"cannot open a video writer for {self.path} (mp4v codec unavailable?)")
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.n += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


class DemoWriter:
    """The write step: ``annotated.mp4`` (atomically), then the first / middle / last frames as PNG and
    the PoseTrack-format prediction json of the video ``name`` (``n_frames`` frames, when known)."""

    def __init__(self, out_dir: str | Path, name: str, fps: float, n_frames: int | None):
        self.out_dir, self.name, self.fps = Path(out_dir), name, fps
        self.png_at = {0} | ({n_frames // 2} if n_frames else set())
        self.pngs: dict[int, np.ndarray] = {}  # frame index -> canvas (at most 3 held)
        self.images: list[dict] = []
        self.predictions: list[dict] = []
        self.tracks: set[int] = set()
        self.max_people = 0
        self.sink: _VideoSink | None = None

    @property
    def video_path(self) -> Path:
        return self.out_dir / "annotated.mp4"

    def stream(self, key_frames: Iterable[KeyFrame]) -> None:
        """Write the annotated video of ``key_frames`` (drawn, in order); nothing stays behind on error."""
        from ftp_pose.io import atomic_write

        def write(tmp: str) -> None:
            self.sink = _VideoSink(tmp, self.fps)
            try:
                for kf in key_frames:
                    self.add(kf)
            finally:
                self.sink.close()
            if self.sink.n == 0:
                raise UnreadableFileError(f"no frame could be decoded from the video {self.name}")
        atomic_write(self.video_path, write)

    def add(self, kf: KeyFrame) -> None:
        """One drawn key frame: its video frame, its image entry and predictions."""
        self.sink.write(kf.canvas)
        self.images.append({"id": kf.t, "file_name": f"{self.name}/{kf.t:06d}.jpg", "frame_id": kf.t,
                            "vid_id": self.name, "is_labeled": True})
        self.predictions.extend(kf.preds)
        self.tracks.update(p["track_id"] for p in kf.preds)
        self.max_people = max(self.max_people, len(kf.preds))
        last = max((t for t in self.pngs if t not in self.png_at), default=None)
        if last is not None:
            del self.pngs[last]  # only the newest frame can be the last one
        self.pngs[kf.t] = kf.canvas

    def finish(self) -> dict[str, Any]:
        """Write the PNG frames and the prediction json; the summary ``run_demo`` returns."""
        from ftp_pose.io import atomic_write
        from ftp_pose.metrics.posetrack_io import write_posetrack_predictions

        pngs = []
        for t, canvas in sorted(self.pngs.items()):
            p = self.out_dir / f"frame_{t:06d}.png"
            bgr = cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)
            atomic_write(p, lambda tmp: cv2.imwrite(tmp, bgr) or _raise(f"cannot write {p}"))
            pngs.append(str(p))
        for im in self.images:
            im["nframes"] = len(self.images)
        pred_paths = write_posetrack_predictions(self.out_dir, {"images": self.images, "annotations": []},
                                                 self.predictions)
        return {"video": str(self.video_path), "frames": pngs, "predictions": str(pred_paths[0]),
                "n_frames": len(self.images), "n_people": len(self.predictions), "n_tracks": len(self.tracks),
                "max_people_per_frame": self.max_people}


def _raise(msg: str) -> None:
    raise OSError(msg)


# ------------------------------------------------------------------------------------------- the pipeline
def make_detector(kind: str, *, weights: str | Path | None = None, arch: str = "fasterrcnn_resnet50_fpn",
                  score_thresh: float = 0.5, device: str | torch.device = "cpu") -> Callable | None:
    """The person detector ``--detector`` names: ``hog``, ``torchvision`` (needs ``weights``) or ``none``."""
    from ftp_pose.video.detect import HOGPeopleDetector, TorchvisionPersonDetector

    if kind == "hog":
        return HOGPeopleDetector()
    if kind == "torchvision":
        if weights is None:
            raise MissingFileError("--detector torchvision needs --detector-weights PATH (a local weights file; "
                                   "nothing is downloaded)")
        return TorchvisionPersonDetector(weights, arch, score_thresh=score_thresh, device=device)
    if kind == "none":
        return None
    raise ValueError(f"--detector must be hog, torchvision or none, got {kind!r}")


def load_model(checkpoint: str | Path, device: torch.device) -> tuple[torch.nn.Module, Any]:
    """The checkpoint's model (eval mode, on ``device``) and its training config."""
    from ftp_pose.engine.checkpoint import model_from_checkpoint

    return model_from_checkpoint(checkpoint, device)


def trained_on_synthetic_data(cfg: Any) -> bool:
    """Whether the config's training set is the synthetic one it renders (``data.synthetic`` with
    ``data.train_ann`` inside its ``out_dir``), as for the shipped ``checkpoints/quick_cpu.pt``."""
    synth = getattr(cfg.data, "synthetic", None)
    if synth is None:
        return False
    ann, root = Path(cfg.data.train_ann).resolve(), Path(synth.out_dir).resolve()
    return ann == root or root in ann.parents


def _batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


#: frames between two detections by default (``--detect-every``). 1: OpenCV's HOG is a small share of a
#: frame's time (measured on the street video, README), so skipping it gains little; raise it for a slow
#: detector (``torchvision`` on a CPU)
DETECT_EVERY = 1


@torch.no_grad()
def run_demo(video: str | Path, checkpoint: str | Path, *, boxes: str | Path | None = None,
             out_dir: str | Path = "runs/demo", show_tokens: bool = False, max_frames: int | None = None,
             score_thresh: float = 0.3, device: str = "auto", flip_test: bool = False,
             detector: str | Callable | None = "hog", detector_weights: str | Path | None = None,
             detector_arch: str = "fasterrcnn_resnet50_fpn", detect_every: int = DETECT_EVERY,
             batch_frames: int = 8, max_people_per_pass: int = 64, progress: bool = True,
             cuda_graphs: bool = True, log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Annotate ``video`` with the poses ``checkpoint`` predicts, streaming (see the module docstring).

    ``detector``: ``"hog"``, ``"torchvision"``, ``"none"`` or a callable ``frame -> (boxes N x 4, scores N)``,
    run on every ``detect_every``-th frame; ignored when ``boxes`` is given. On CUDA (and with
    ``cuda_graphs``) the model runs from captured CUDA graphs, one per number of people in a pass
    (:mod:`ftp_pose.models.runner`). ``log`` receives a one-line note when the checkpoint was trained
    on synthetic data only. Returns ``{"video", "frames" (png paths), "predictions" (json path),
    "n_frames", "n_people", "n_tracks", "max_people_per_frame"}``.
    """
    from tqdm.auto import tqdm

    from ftp_pose.data.detections import load_frame_boxes
    from ftp_pose.engine.distributed import resolve_device

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise MissingFileError(f"checkpoint not found: {checkpoint}")
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    frames, fps, n_total = open_frames(video, max_frames)
    dev = resolve_device(device)
    model, cfg = load_model(checkpoint, dev)
    if log is not None and trained_on_synthetic_data(cfg):
        log(f"note: {checkpoint.name} was trained on synthetic videos only ({cfg.data.train_ann}): the skeletons "
            f"will not fit real people (train on PoseTrack for that: README, Command line, demo)")
    if cuda_graphs and dev.type == "cuda":
        from ftp_pose.models.runner import make_runner

        net = make_runner(model, dev, "cuda_graphs")[0]
    else:
        net = model
    input_size, heatmap_size = tuple(cfg.data.input_size), tuple(cfg.data.heatmap_size)
    layout = ClipLayout(cfg.data.offsets)
    if boxes is not None:
        people = PeopleStep(boxes=load_frame_boxes(boxes, n_total, score_thresh))
    else:
        det = detector if callable(detector) else make_detector(
            detector or "none", weights=detector_weights, arch=detector_arch, device=dev)
        people = PeopleStep(det, every=detect_every)
    name = Path(video).stem if Path(video).is_file() else Path(video).name
    writer = DemoWriter(out_dir, name, fps, n_total)

    def drawn_key_frames() -> Iterator[KeyFrame]:
        key_frames = (crop_people(t, window, people(t, window[t]), layout, input_size, cfg.data.box_enlarge)
                      for t, window in clip_windows(frames, layout))
        bar = tqdm(total=n_total, desc="demo", unit="frame", disable=None if progress else True, dynamic_ncols=True)
        try:
            for batch in _batched(key_frames, batch_frames):
                infer_poses(net, batch, input_size=input_size, heatmap_size=heatmap_size, key_index=layout.key_index,
                            device=dev, max_people_per_pass=max_people_per_pass, flip_test=flip_test,
                            show_tokens=show_tokens)
                for kf in batch:
                    draw_key_frame(kf)
                    yield kf
                    bar.update(1)
        finally:
            bar.close()

    writer.stream(drawn_key_frames())
    return writer.finish()


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    from ftp_pose.video.detect import TORCHVISION_ARCHS

    parser.add_argument("video", help="video file (mp4, avi, ...) or a folder of frames")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by `train` (last.pt / best.pt)")
    parser.add_argument("--boxes", help="person boxes json (COCO results; frame_index or image_id per entry)")
    parser.add_argument("--detector", default="hog", choices=("hog", "torchvision", "none"),
                        help="person detector when no --boxes are given: hog (default, offline), torchvision "
                             "(needs --detector-weights) or none (the whole frame is one person)")
    parser.add_argument("--detector-weights", help="weights file of the torchvision detector (never downloaded)")
    parser.add_argument("--detector-arch", default="fasterrcnn_resnet50_fpn", choices=TORCHVISION_ARCHS,
                        help="torchvision detection architecture of --detector-weights")
    parser.add_argument("--detect-every", type=_positive_int, default=DETECT_EVERY, metavar="N",
                        help=f"run the detector on every N-th frame, the tracker carries the boxes in between "
                             f"(default {DETECT_EVERY})")
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--show-tokens", action="store_true", help="draw the tokens each branch kept")
    parser.add_argument("--max-frames", type=_positive_int, default=None, help="process at most this many frames")
    parser.add_argument("--batch", type=_positive_int, default=8, help="key frames inferred together (default 8)")
    parser.add_argument("--score-thresh", type=float, default=0.3, help="minimum --boxes score (default 0.3)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="on CUDA, run the model eagerly instead of replaying CUDA graphs")


def run_cli(args: argparse.Namespace) -> int:
    res = run_demo(args.video, args.checkpoint, boxes=args.boxes, out_dir=args.out, show_tokens=args.show_tokens,
                   max_frames=args.max_frames, score_thresh=args.score_thresh, device=args.device,
                   detector=args.detector, detector_weights=args.detector_weights, detector_arch=args.detector_arch,
                   detect_every=args.detect_every, batch_frames=args.batch, cuda_graphs=args.cuda_graphs)
    print(f"{res['n_frames']} frames, {res['n_people']} poses ({res['n_tracks']} tracks, at most "
          f"{res['max_people_per_frame']} per frame) -> {res['video']}")
    print(f"  predictions: {res['predictions']}")
    for f in res["frames"]:
        print(f"  {f}")
    return 0
