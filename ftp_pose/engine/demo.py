"""Demo: ``python -m ftp_pose demo VIDEO --checkpoint CKPT [--boxes boxes.json] [--out DIR] [--show-tokens]``.

``VIDEO`` is a video file OpenCV can read (mp4, avi, ...) or a folder of frames (``*.jpg``/``*.png``,
sorted by name). Every frame t is the key frame of a clip (t-1, t, t+1 by default, from the
checkpoint's config; at the ends the missing neighbour repeats the key frame). Person boxes:

* ``--boxes FILE``: a json list in the COCO results format, ``[{"frame_index" or "image_id", "bbox":
  [x, y, w, h], "score"}, ...]``. ``frame_index`` is the 0-based position of the frame in the video
  (or in the sorted folder). Without it, ``image_id`` is used: as the frame index when every id is
  a valid index, otherwise the sorted distinct ids are taken as the frames in order (PoseTrack ids
  such as 10000010000 work that way). Boxes under ``--score-thresh`` are skipped.
* no ``--boxes``: one box covering the whole frame (a single, roughly centred person).

Writes ``DIR/annotated.mp4`` (cv2.VideoWriter, 'mp4v') and PNG frames ``DIR/frame_XXXXXX.png``
(the first, middle and last processed frame) with skeletons; ``--show-tokens`` also marks the
tokens each branch kept: small dots at the kept high-resolution grid positions (64 x 48 grid) and
squares at the kept low-resolution cells (16 x 12 patches) of the key frame.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch


_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


def read_frames(source: str | Path, max_frames: int | None = None) -> tuple[list[np.ndarray], float]:
    """RGB uint8 frames (H x W x 3) of a video file or a folder of images, and the frame rate.

    Raises FileNotFoundError for a missing path and ValueError for a file OpenCV cannot decode.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"video not found: {source}")
    frames: list[np.ndarray] = []
    fps = 25.0
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in _IMAGE_EXT)
        if not files:
            raise ValueError(f"no image frames ({', '.join(_IMAGE_EXT)}) in folder {source}")
        for p in files[:max_frames]:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"cannot read frame image {p}")
            frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        return frames, fps
    cap = cv2.VideoCapture(str(source))
    try:
        if not cap.isOpened():
            raise ValueError(f"cannot read video {source}: OpenCV could not open it (not a video, or an "
                             f"unsupported codec)")
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or fps
        while max_frames is None or len(frames) < max_frames:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"cannot read video {source}: no frame could be decoded")
    return frames, fps if np.isfinite(fps) and fps > 0 else 25.0


def load_boxes(path: str | Path, n_frames: int, score_thresh: float = 0.3) -> dict[int, list[tuple[np.ndarray, float]]]:
    """Boxes per frame index from a COCO-results json (see the module docstring for the keys)."""
    from ftp_pose.io import read_json

    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: boxes must be a json list of {{frame_index|image_id, bbox, score}}")
    for i, d in enumerate(data):
        if not isinstance(d, dict) or "bbox" not in d or not ("frame_index" in d or "image_id" in d):
            raise ValueError(f"{path}: entry #{i} needs 'bbox' and 'frame_index' or 'image_id'")
    ids = [int(d["image_id"]) for d in data if "frame_index" not in d]
    as_index = all(0 <= i < n_frames for i in ids)
    order = {v: k for k, v in enumerate(sorted(set(ids)))}
    out: dict[int, list[tuple[np.ndarray, float]]] = {}
    for d in data:
        if d.get("category_id", 1) != 1:
            continue
        score = float(d.get("score", 1.0))
        if score < score_thresh:
            continue
        f = int(d["frame_index"]) if "frame_index" in d else \
            (int(d["image_id"]) if as_index else order[int(d["image_id"])])
        box = np.asarray(d["bbox"], np.float32)
        if box.shape != (4,) or box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"{path}: bad bbox {d['bbox']!r} (want [x, y, w, h] with w, h > 0)")
        out.setdefault(f, []).append((box, score))
    return out


def make_clip(frames: list[np.ndarray], t: int, box: np.ndarray, offsets: list[int], input_size: tuple[int, int],
              enlarge: float = 1.25) -> tuple[torch.Tensor, np.ndarray]:
    """The ``T x 3 x H x W`` normalised clip of the box in frame ``t`` and its image -> input affine (2 x 3)."""
    from ftp_pose.data import box_to_center_scale, crop_frames, get_affine_transform, normalize

    in_h, in_w = input_size
    center, scale = box_to_center_scale(box, aspect=in_w / in_h, enlarge=enlarge)
    m = get_affine_transform(center, scale, 0.0, (in_w, in_h))
    ids = [t + o if 0 <= t + o < len(frames) else t for o in sorted(list(offsets) + [0])]
    crops = crop_frames([frames[i] for i in ids], m, (in_w, in_h))
    return normalize(np.stack(crops)), m


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


@torch.no_grad()
def run_demo(video: str | Path, checkpoint: str | Path, *, boxes: str | Path | None = None,
             out_dir: str | Path = "runs/demo", show_tokens: bool = False, max_frames: int | None = None,
             score_thresh: float = 0.3, device: str = "auto", flip_test: bool = False,
             cuda_graphs: bool = True) -> dict[str, Any]:
    """Annotate ``video`` with the poses ``checkpoint`` predicts; return ``{"video", "frames", "n_frames", "n_people"}``.

    On CUDA (and with ``cuda_graphs``) the model runs from captured CUDA graphs, one per number
    of people in a frame (:mod:`ftp_pose.models.runner`): batch-1 latency without launch overhead.
    """
    from ftp_pose.data import invert_affine
    from ftp_pose.engine.distributed import resolve_device
    from ftp_pose.engine.inference import heatmaps_to_predictions, model_from_checkpoint, predict_heatmaps

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    frames, fps = read_frames(video, max_frames)
    dev = resolve_device(device)
    model, cfg = model_from_checkpoint(checkpoint, dev)
    from ftp_pose.models.runner import make_runner

    net = make_runner(model, dev, "cuda_graphs")[0] if cuda_graphs and dev.type == "cuda" else model
    input_size, heatmap_size = tuple(cfg.data.input_size), tuple(cfg.data.heatmap_size)
    offsets = list(cfg.data.offsets)
    key_index = sorted(offsets + [0]).index(0)
    per_frame = load_boxes(boxes, len(frames), score_thresh) if boxes is not None else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    annotated: list[np.ndarray] = []
    n_people = 0
    for t in tqdm(range(len(frames)), desc="demo", leave=False, dynamic_ncols=True):
        H, W = frames[t].shape[:2]
        frame_boxes = per_frame.get(t, []) if per_frame is not None else [(np.array([0, 0, W, H], np.float32), 1.0)]
        canvas = frames[t].copy()
        if frame_boxes:
            crops = [make_clip(frames, t, box, offsets, input_size, cfg.data.box_enlarge) for box, _ in frame_boxes]
            clips = torch.stack([c for c, _ in crops]).to(dev)
            info = None
            if show_tokens:
                try:
                    _, info = net(clips, return_info=True)
                except TypeError:
                    info = None  # a model without token info: skeletons only
            hm = predict_heatmaps(net, clips, flip_test=flip_test)
            metas = [{"image_id": t, "affine": m, "box": box, "box_score": s}
                     for (_, m), (box, s) in zip(crops, frame_boxes)]
            preds = heatmaps_to_predictions(hm, metas, input_size=input_size, heatmap_size=heatmap_size)
            for b, p in enumerate(preds):
                if info is not None:
                    _draw_tokens(canvas, info, b, invert_affine(crops[b][1]), key_index, input_size, heatmap_size)
                _draw_pose(canvas, np.asarray(p["keypoints"], np.float32))
            n_people += len(preds)
        annotated.append(canvas)

    video_path = out_dir / "annotated.mp4"
    _write_video(video_path, annotated, fps)
    from ftp_pose.io import atomic_write

    pngs = []
    for t in sorted({0, len(annotated) // 2, len(annotated) - 1}):
        p = out_dir / f"frame_{t:06d}.png"
        bgr = cv2.cvtColor(annotated[t], cv2.COLOR_RGB2BGR)
        atomic_write(p, lambda tmp, img=bgr: cv2.imwrite(tmp, img) or _raise(f"cannot write {p}"))
        pngs.append(str(p))
    return {"video": str(video_path), "frames": pngs, "n_frames": len(annotated), "n_people": n_people}


def _raise(msg: str) -> None:
    raise OSError(msg)


def _write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """Write RGB frames to an mp4 ('mp4v') through a temp file renamed into place."""
    from ftp_pose.io import atomic_write

    h, w = frames[0].shape[:2]

    def write(tmp: str) -> None:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise OSError(f"cannot open a video writer for {path} (mp4v codec unavailable?)")
        try:
            for f in frames:
                writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    atomic_write(path, write)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video file (mp4, avi, ...) or a folder of frames")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by `train` (last.pt / best.pt)")
    parser.add_argument("--boxes", help="person boxes json (COCO results; frame_index or image_id per entry)")
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--show-tokens", action="store_true", help="draw the tokens each branch kept")
    parser.add_argument("--max-frames", type=int, default=None, help="process at most this many frames")
    parser.add_argument("--score-thresh", type=float, default=0.3, help="minimum box score (default 0.3)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="on CUDA, run the model eagerly instead of replaying CUDA graphs")


def run_cli(args: argparse.Namespace) -> int:
    res = run_demo(args.video, args.checkpoint, boxes=args.boxes, out_dir=args.out, show_tokens=args.show_tokens,
                   max_frames=args.max_frames, score_thresh=args.score_thresh, device=args.device,
                   cuda_graphs=args.cuda_graphs)
    print(f"{res['n_frames']} frames, {res['n_people']} poses -> {res['video']}")
    for f in res["frames"]:
        print(f"  {f}")
    return 0
