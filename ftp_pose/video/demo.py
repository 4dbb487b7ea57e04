"""Demo: ``python -m ftp_pose demo VIDEO --checkpoint CKPT [--boxes boxes.json | --detector ...] [--out DIR]``.

``VIDEO`` is a video file OpenCV can read (mp4, avi, ...) or a folder of frames (``*.jpg``/``*.png``,
sorted by name). Every frame t is the key frame of a clip (t-1, t, t+1 by default, from the
checkpoint's config; at the ends the missing neighbour repeats the key frame).

Streaming: frames are read one at a time, the poses of ``--batch`` key frames are inferred
together, and each annotated frame is written as soon as its batch is done. Only the clip window
(3 frames by default) and one batch of frames are held at once, so memory does not grow with the
length of the video (the prediction json, a few hundred bytes per person, is kept until the end).

Person boxes:

* ``--boxes FILE``: a json list in the COCO results format, ``[{"frame_index" or "image_id", "bbox":
  [x, y, w, h], "score", optional "track_id"}, ...]``. ``frame_index`` is the 0-based position of the
  frame in the video (or in the sorted folder). Without it, ``image_id`` is used: as the frame index
  when every id is a valid index, otherwise the sorted distinct ids are taken as the frames in order
  (PoseTrack ids such as 10000010000 work that way). Boxes under ``--score-thresh`` are skipped.
* no ``--boxes``: a person detector on every frame (``--detector``):

  - ``hog`` (default, offline): the HOG people detector (:class:`ftp_pose.video.detect.HOGPeopleDetector`);
  - ``torchvision``: a torchvision detection model from ``--detector-weights PATH`` (architecture
    ``--detector-arch``, default ``fasterrcnn_resnet50_fpn``); nothing is downloaded;
  - ``none``: one box covering the whole frame (a single, roughly centred person).

Boxes without a ``track_id`` get one from greedy IoU tracking across frames
(:class:`ftp_pose.video.tracking.IoUTracker`), so a person keeps its id from frame to frame.

Writes, in ``DIR``: ``annotated.mp4`` (cv2.VideoWriter, 'mp4v'), PNG frames ``frame_XXXXXX.png``
(the first, middle and last frame) with skeletons, and ``<video name>.json``: PoseTrack-format
predictions (one image per frame, ``id`` = frame index; per person ``bbox``, ``keypoints``,
``scores``, ``score``, ``track_id``), written by :func:`ftp_pose.metrics.posetrack_io.write_posetrack_predictions`.
``--show-tokens`` also marks the tokens each branch kept: small dots at the kept high-resolution grid
positions (64 x 48 grid) and squares at the kept low-resolution cells (16 x 12 patches) of the key frame.
"""
from __future__ import annotations

import argparse
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import torch

from ftp_pose.clip import ClipLayout
from ftp_pose.data.clips import box_affine, clip_frame_ids, crop_clip, read_rgb
from ftp_pose.data.detections import load_frame_boxes
from ftp_pose.errors import MissingFileError, UnreadableFileError

_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


def open_frames(source: str | Path, max_frames: int | None = None) -> tuple[Iterator[np.ndarray], float, int | None]:
    """A lazy iterator over the RGB uint8 frames (H x W x 3) of a video file or a folder of images,
    the frame rate, and the number of frames when known (None otherwise).

    Problems are found before the first frame is asked for: MissingFileError for a missing path,
    UnreadableFileError for a file OpenCV cannot decode or a folder without images.
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
                                  f"or an unsupported codec)")
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    fps = fps if np.isfinite(fps) and fps > 0 else 25.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    count = (min(count, limit) if limit is not None else count) if count > 0 else None

    def video() -> Iterator[np.ndarray]:
        try:
            img, n = first, 0
            while img is not None and (limit is None or n < limit):
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                n += 1
                ok, img = cap.read()
                img = img if ok else None
        finally:
            cap.release()
    return video(), fps, count


def make_clip(window: dict[int, np.ndarray], t: int, box: np.ndarray, layout: ClipLayout,
              input_size: tuple[int, int], enlarge: float = 1.25) -> tuple[torch.Tensor, np.ndarray]:
    """The ``T x 3 x H x W`` normalised clip of the box in frame ``t`` and its image -> input affine (2 x 3).

    ``window`` maps frame indices to frames (at least ``t``); a missing neighbour repeats frame ``t``.
    """
    m = box_affine(box, input_size, enlarge)
    return crop_clip([window[i] for i in clip_frame_ids(t, layout, window.__contains__)], m, input_size), m


def _draw_pose(img: np.ndarray, kpts: np.ndarray, thresh: float = 0.2) -> None:
    """Skeleton of one person (17 x 3: x, y in image pixels, score) drawn in place on an RGB image."""
    from ftp_pose.viz.skeleton import draw_skeleton

    img[...] = draw_skeleton(img, kpts[:, :2], scores=kpts[:, 2], thresh=thresh)


def _draw_tokens(img: np.ndarray, info: dict, b: int, inv: np.ndarray, key_index: int,
                 input_size: tuple[int, int], heatmap_size: tuple[int, int], patch: int = 16) -> None:
    """Kept HR grid positions (dots) and kept key-frame LR cells (squares) of batch item ``b``."""
    from ftp_pose.data import affine_points, heatmap_to_input

    h, w = heatmap_size
    if info.get("kept_index_h") is not None:
        idx = info["kept_index_h"][b].detach().cpu().numpy().astype(np.int64)
        hm_xy = np.stack([idx % w, idx // w], 1).astype(np.float32)
        xy = affine_points(heatmap_to_input(hm_xy, input_size, heatmap_size), inv)
        for x, y in xy:
            cv2.circle(img, (int(x), int(y)), 1, (255, 230, 0), -1)
    if info.get("kept_index_l") is not None:
        gh, gw = input_size[0] // patch, input_size[1] // patch
        idx = info["kept_index_l"][b].detach().cpu().numpy().astype(np.int64)
        idx = idx[idx // (gh * gw) == key_index] % (gh * gw)
        for p in idx:
            x0, y0 = (p % gw) * patch, (p // gw) * patch
            corners = affine_points(np.array([[x0, y0], [x0 + patch - 1, y0 + patch - 1]], np.float32), inv)
            cv2.rectangle(img, tuple(int(v) for v in corners[0]), tuple(int(v) for v in corners[1]),
                          (0, 255, 255), 1)


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


@torch.no_grad()
def run_demo(video: str | Path, checkpoint: str | Path, *, boxes: str | Path | None = None,
             out_dir: str | Path = "runs/demo", show_tokens: bool = False, max_frames: int | None = None,
             score_thresh: float = 0.3, device: str = "auto", flip_test: bool = False,
             detector: str | Callable | None = "hog", detector_weights: str | Path | None = None,
             detector_arch: str = "fasterrcnn_resnet50_fpn", batch_frames: int = 8,
             max_people_per_pass: int = 64, progress: bool = True, cuda_graphs: bool = True) -> dict[str, Any]:
    """Annotate ``video`` with the poses ``checkpoint`` predicts, streaming (see the module docstring).

    ``detector``: ``"hog"``, ``"torchvision"``, ``"none"`` or a callable ``frame -> (boxes N x 4, scores N)``;
    ignored when ``boxes`` is given. On CUDA (and with ``cuda_graphs``) the model runs from captured
    CUDA graphs, one per number of people in a pass (:mod:`ftp_pose.models.runner`): no launch
    overhead at small batches. Returns ``{"video", "frames" (png paths), "predictions" (json path),
    "n_frames", "n_people", "n_tracks", "max_people_per_frame"}``.
    """
    from ftp_pose.data import invert_affine
    from ftp_pose.engine.distributed import resolve_device
    from ftp_pose.engine.checkpoint import model_from_checkpoint
    from ftp_pose.engine.inference import heatmaps_to_predictions, predict_heatmaps
    from ftp_pose.video.tracking import IoUTracker
    from ftp_pose.io import atomic_write
    from ftp_pose.metrics.posetrack_io import write_posetrack_predictions

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise MissingFileError(f"checkpoint not found: {checkpoint}")
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    frames, fps, n_total = open_frames(video, max_frames)
    dev = resolve_device(device)
    model, cfg = model_from_checkpoint(checkpoint, dev)
    from ftp_pose.models.runner import make_runner

    net = make_runner(model, dev, "cuda_graphs")[0] if cuda_graphs and dev.type == "cuda" else model
    input_size, heatmap_size = tuple(cfg.data.input_size), tuple(cfg.data.heatmap_size)
    layout = ClipLayout(cfg.data.offsets)
    key_index = layout.key_index
    before, after = -layout.frames[0], layout.frames[-1]
    per_frame = load_frame_boxes(boxes, n_total or 10 ** 12, score_thresh) if boxes is not None else None
    det = None if per_frame is not None else (
        detector if callable(detector) else
        make_detector(detector or "none", weights=detector_weights, arch=detector_arch, device=dev))
    tracker = IoUTracker()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = Path(video).stem if Path(video).is_file() else Path(video).name

    def people(t: int, frame: np.ndarray) -> list[tuple[np.ndarray, float, int]]:
        """``(box, score, track_id)`` of the people of frame ``t``."""
        H, W = frame.shape[:2]
        if per_frame is not None:
            found = per_frame.get(t, [])
        elif det is None:
            found = [(np.array([0, 0, W, H], np.float32), 1.0, None)]
        else:
            b, s = det(frame)
            found = [(np.asarray(bb, np.float32), float(ss), None) for bb, ss in zip(b, s)]
        if found and all(tid is None for _, _, tid in found):
            ids = tracker.update(np.stack([b for b, _, _ in found]))
            found = [(b, s, i) for (b, s, _), i in zip(found, ids)]
        return [(b, s, int(i) if i is not None else -1) for b, s, i in found]

    def infer(pending: list[dict]) -> None:
        """Poses of every person of the pending key frames, drawn onto their canvases."""
        items = [(p, k) for p in pending for k in range(len(p["people"]))]
        for lo in range(0, len(items), max_people_per_pass):
            chunk = items[lo:lo + max_people_per_pass]
            clips = torch.stack([p["clips"][k][0] for p, k in chunk]).to(dev)
            info = None
            if show_tokens:
                try:
                    _, info = net(clips, return_info=True)
                except TypeError:
                    info = None  # a model without token info: skeletons only
            hm = predict_heatmaps(net, clips, flip_test=flip_test)
            metas = [{"image_id": p["t"], "affine": p["clips"][k][1], "box": p["people"][k][0],
                      "box_score": p["people"][k][1], "track_id": p["people"][k][2]} for p, k in chunk]
            preds = heatmaps_to_predictions(hm, metas, input_size=input_size, heatmap_size=heatmap_size)
            for b, ((p, k), pred) in enumerate(zip(chunk, preds)):
                if info is not None:
                    _draw_tokens(p["canvas"], info, b, invert_affine(p["clips"][k][1]), key_index, input_size,
                                 heatmap_size)
                _draw_pose(p["canvas"], np.asarray(pred["keypoints"], np.float32))
                pred["bbox"] = pred.pop("box")
                p["preds"].append(pred)

    from tqdm.auto import tqdm

    images: list[dict] = []
    predictions: list[dict] = []
    png_at = {0} | ({n_total // 2} if n_total else set())
    pngs: list[str] = []
    stats = {"n": 0, "people": 0, "max": 0, "tracks": set()}
    last: dict[str, Any] = {}

    def save_png(t: int, canvas: np.ndarray) -> None:
        p = out_dir / f"frame_{t:06d}.png"
        bgr = cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)
        atomic_write(p, lambda tmp: cv2.imwrite(tmp, bgr) or _raise(f"cannot write {p}"))
        if str(p) not in pngs:
            pngs.append(str(p))

    def stream(tmp: str) -> None:
        sink = _VideoSink(tmp, fps)
        bar = tqdm(total=n_total, desc="demo", unit="frame", disable=None if progress else True, dynamic_ncols=True)
        window: dict[int, np.ndarray] = {}
        ready: deque[int] = deque()  # read key frames whose clip is not complete yet
        pending: list[dict] = []

        def flush() -> None:
            infer(pending)
            for p in pending:
                sink.write(p["canvas"])
                images.append({"id": p["t"], "file_name": f"{name}/{p['t']:06d}.jpg", "frame_id": p["t"],
                               "vid_id": name, "is_labeled": True})
                predictions.extend(p["preds"])
                stats["n"] += 1
                stats["people"] += len(p["preds"])
                stats["max"] = max(stats["max"], len(p["preds"]))
                stats["tracks"].update(q["track_id"] for q in p["preds"])
                if p["t"] in png_at:
                    save_png(p["t"], p["canvas"])
                last.update(t=p["t"], canvas=p["canvas"])
                bar.update(1)
            pending.clear()

        def key_frame(t: int) -> None:
            ppl = people(t, window[t])
            pending.append({"t": t, "canvas": window[t].copy(), "people": ppl, "preds": [],
                            "clips": [make_clip(window, t, b, layout, input_size, cfg.data.box_enlarge)
                                      for b, _, _ in ppl]})
            for old in [i for i in window if i < t + 1 - before]:
                del window[old]  # the next key frame's clip starts at t + 1 - before
            if len(pending) >= batch_frames:
                flush()

        try:
            for t, frame in enumerate(frames):
                window[t] = frame
                ready.append(t)
                while ready and ready[0] + after <= t:
                    key_frame(ready.popleft())
            while ready:
                key_frame(ready.popleft())
            flush()
        finally:
            sink.close()
            bar.close()
        if sink.n == 0:
            raise UnreadableFileError(f"cannot read video {video}: no frame could be decoded")

    video_path = out_dir / "annotated.mp4"
    atomic_write(video_path, stream)
    if last and last["t"] not in png_at:
        save_png(last["t"], last["canvas"])
    for im in images:
        im["nframes"] = len(images)
    pred_paths = write_posetrack_predictions(out_dir, {"images": images, "annotations": []}, predictions)
    return {"video": str(video_path), "frames": sorted(pngs), "predictions": str(pred_paths[0]),
            "n_frames": stats["n"], "n_people": stats["people"], "n_tracks": len(stats["tracks"]),
            "max_people_per_frame": stats["max"]}


def _raise(msg: str) -> None:
    raise OSError(msg)


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
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--show-tokens", action="store_true", help="draw the tokens each branch kept")
    parser.add_argument("--max-frames", type=int, default=None, help="process at most this many frames")
    parser.add_argument("--batch", type=int, default=8, help="key frames inferred together (default 8)")
    parser.add_argument("--score-thresh", type=float, default=0.3, help="minimum --boxes score (default 0.3)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="on CUDA, run the model eagerly instead of replaying CUDA graphs")


def run_cli(args: argparse.Namespace) -> int:
    res = run_demo(args.video, args.checkpoint, boxes=args.boxes, out_dir=args.out, show_tokens=args.show_tokens,
                   max_frames=args.max_frames, score_thresh=args.score_thresh, device=args.device,
                   detector=args.detector, detector_weights=args.detector_weights, detector_arch=args.detector_arch,
                   batch_frames=args.batch, cuda_graphs=args.cuda_graphs)
    print(f"{res['n_frames']} frames, {res['n_people']} poses ({res['n_tracks']} tracks, at most "
          f"{res['max_people_per_frame']} per frame) -> {res['video']}")
    print(f"  predictions: {res['predictions']}")
    for f in res["frames"]:
        print(f"  {f}")
    return 0
