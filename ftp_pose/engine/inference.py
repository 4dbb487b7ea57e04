"""Inference for evaluation: a model on a clip dataset -> PoseTrack keypoint predictions -> AP.

Per person box (one dataset item):

1. heatmaps ``H = model(clip)`` (``B x 17 x 64 x 48``); with flip test the clip is mirrored
   horizontally, run again, mirrored back with :func:`ftp_pose.data.flip_heatmaps` (which also
   swaps left/right joints) and averaged with ``H``;
2. joints decoded with sub-pixel refinement (DARK by default, see :class:`ftp_pose.data.HeatmapCodec`),
   mapped heatmap -> input crop -> image through the inverse of the item's affine;
3. scores (HRNet / DCPose convention):
   joint score = heatmap maximum x box score (``joint_score="heatmap_x_box"``, DCPose; with gt
   boxes the box score is 1), or the heatmap maximum alone (``"heatmap"``);
   person score = mean of the heatmap maxima above ``joint_thresh`` (0.2) x box score;
4. with detector boxes, duplicates of one person are removed per frame by OKS-NMS (threshold 0.9,
   as HRNet); with ground-truth boxes nothing is removed.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ftp_pose.data import HeatmapCodec, PoseTrackClipDataset, flip_heatmaps, invert_affine
from ftp_pose.engine import distributed as D
from ftp_pose.engine.builders import amp_dtype, collate_clips, resolve_path
from ftp_pose.engine.checkpoint import model_from_checkpoint
from ftp_pose.engine.scoring import ap_table, score_and_write
from ftp_pose.keypoints import OKS_SIGMAS

#: model_from_checkpoint (engine.checkpoint), score_and_write and ap_table (engine.scoring) stay importable from here
__all__ = ["predict_heatmaps", "heatmaps_to_predictions", "oks_nms", "predict", "validate", "evaluate_checkpoint",
           "model_from_checkpoint", "score_and_write", "ap_table"]


def _dataset_sizes(dataset: Dataset) -> tuple[tuple[int, int], tuple[int, int]]:
    base = dataset
    while isinstance(base, Subset):
        base = base.dataset
    return tuple(getattr(base, "input_size", (256, 192))), tuple(getattr(base, "heatmap_size", (64, 48)))


@torch.no_grad()
def predict_heatmaps(model: nn.Module, clips: torch.Tensor, flip_test: bool = True,
                     amp: torch.dtype | None = None) -> torch.Tensor:
    """``clips`` B x T x 3 x H x W -> heatmaps B x J x h x w (float32), flip-averaged when ``flip_test``."""
    ctx = torch.autocast(clips.device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    with ctx:
        hm = model(clips).float()
        if flip_test:
            hm_f = model(torch.flip(clips, dims=[-1])).float()
            hm = 0.5 * (hm + flip_heatmaps(hm_f))
    return hm


def heatmaps_to_predictions(heatmaps: torch.Tensor | np.ndarray, metas: Sequence[dict], *,
                            input_size: Sequence[int] = (256, 192), heatmap_size: Sequence[int] = (64, 48),
                            refine: str | None = "dark", joint_score: str = "heatmap_x_box",
                            joint_thresh: float = 0.2) -> list[dict]:
    """Decode B x J x h x w heatmaps of items with ``metas`` into prediction dicts.

    Returns one ``{"image_id", "keypoints" (17 x 3 list: x, y, score in image pixels), "score",
    "track_id", "box" (xywh), "box_score"}`` per item.
    """
    if joint_score not in ("heatmap_x_box", "heatmap"):
        raise ValueError(f"joint_score must be 'heatmap_x_box' or 'heatmap', got {joint_score!r}")
    inv = np.stack([invert_affine(np.asarray(m["affine"], np.float32)) for m in metas])
    xy, maxvals = HeatmapCodec(input_size, heatmap_size).decode_to_image(heatmaps, inv, refine=refine)
    out = []
    for i, m in enumerate(metas):
        box_score = float(m.get("box_score", 1.0))
        conf = maxvals[i].astype(np.float64)
        above = conf[conf > joint_thresh]
        person = (float(above.mean()) if above.size else 0.0) * box_score
        jscore = conf * box_score if joint_score == "heatmap_x_box" else conf
        kpts = np.concatenate([xy[i].astype(np.float64), jscore[:, None]], axis=1)
        out.append({"image_id": int(m["image_id"]), "keypoints": kpts.tolist(), "score": person,
                    "track_id": int(m.get("track_id", -1)),
                    "box": [float(v) for v in np.asarray(m.get("box", np.zeros(4)), np.float64)],
                    "box_score": box_score})
    return out


def oks_nms(predictions: list[dict], threshold: float = 0.9) -> list[dict]:
    """Greedy OKS non-maximum suppression per image (HRNet): drop poses with OKS > threshold to a better one."""
    by_image: dict[int, list[dict]] = {}
    for p in predictions:
        by_image.setdefault(p["image_id"], []).append(p)
    keep_all = []
    var = (2 * np.asarray(OKS_SIGMAS)) ** 2
    for preds in by_image.values():
        preds = sorted(preds, key=lambda p: -p["score"])
        kp = np.array([p["keypoints"] for p in preds], np.float64)  # N x J x 3
        areas = np.array([max(1.0, p["box"][2] * p["box"][3]) for p in preds])
        alive = np.ones(len(preds), bool)
        for i in range(len(preds)):
            if not alive[i]:
                continue
            keep_all.append(preds[i])
            rest = np.nonzero(alive)[0]
            rest = rest[rest > i]
            if rest.size == 0:
                continue
            d2 = ((kp[rest, :, :2] - kp[i, None, :, :2]) ** 2).sum(-1)  # R x J
            e = d2 / var / ((areas[rest, None] + areas[i]) / 2 + np.spacing(1)) / 2
            oks = np.exp(-e).mean(-1)
            alive[rest[oks > threshold]] = False
    return keep_all


def predict(model: nn.Module, dataset: Dataset, batch_size: int = 32, flip_test: bool = True,
            device: str | torch.device = "cpu", amp: torch.dtype | None = None, *, workers: int = 0,
            refine: str | None = "dark", joint_score: str = "heatmap_x_box", joint_thresh: float = 0.2,
            nms_oks: float | None = None, progress: bool = True) -> list[dict]:
    """Run ``model`` on every item of ``dataset`` (a PoseTrackClipDataset or a Subset of one).

    Returns a list of prediction dicts (see :func:`heatmaps_to_predictions`), in dataset order,
    after OKS-NMS when ``nms_oks`` is given (use it with detector boxes).
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    input_size, heatmap_size = _dataset_sizes(dataset)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=collate_clips, pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    preds: list[dict] = []
    try:
        for batch in tqdm(loader, desc="inference", disable=None if progress else True, leave=False, dynamic_ncols=True):
            hm = predict_heatmaps(model, batch["clip"].to(device, non_blocking=True), flip_test, amp)
            preds += heatmaps_to_predictions(hm, batch["meta"], input_size=input_size, heatmap_size=heatmap_size,
                                             refine=refine, joint_score=joint_score, joint_thresh=joint_thresh)
    finally:
        model.train(was_training)
    if nms_oks is not None:
        preds = oks_nms(preds, nms_oks)
    return preds


def validate(model: nn.Module, val_set: Dataset, cfg: Any, dist: D.DistInfo, out_dir: Path) -> dict:
    """Training-time validation: each rank predicts its share, rank 0 scores all of them.

    Writes ``out_dir/val_predictions/``, ``val_ap.json`` and ``val_ap.md`` (rank 0) and returns the AP
    table ``{"Head": .., ..., "Mean": ..}`` (percent) on rank 0, ``{}`` elsewhere.
    """
    share = Subset(val_set, range(dist.rank, len(val_set), dist.world_size)) if dist.enabled else val_set
    boxes = cfg.data.val_boxes
    preds = predict(model, share, batch_size=cfg.val_batch_size or cfg.batch_size, flip_test=cfg.flip_test,
                    device=dist.device, amp=amp_dtype(cfg, dist.device), workers=cfg.workers,
                    progress=dist.is_main)
    gathered = D.all_gather_object(preds)
    if not dist.is_main:
        return {}
    preds = [p for part in gathered for p in part]
    if boxes != "gt":
        preds = oks_nms(preds, 0.9)
    result = score_and_write(preds, resolve_path(cfg.data.val_ann), out_dir, pred_subdir="val_predictions",
                             stem="val_ap")
    return ap_table(result)


def evaluate_checkpoint(checkpoint: str | Path, ann: str | Path, images: str | Path, *, boxes: str = "gt",
                        out_dir: str | Path = "runs/eval", batch_size: int = 16, flip_test: bool = True,
                        device: str = "auto", workers: int = 0, det_score_thresh: float | None = None,
                        nms_oks: float | None = 0.9, progress: bool = True) -> Any:
    """Run ``checkpoint`` on the people of ``ann`` (gt boxes or a detection json) and score it.

    ``progress=False`` hides the tqdm bar; it is drawn only where stderr is a terminal.

    Writes ``out_dir/predictions/<video>.json`` (PoseTrack 2018 layout), ``out_dir/result.json`` and
    ``out_dir/result.md``; returns the APResult. Crop sizes come from the checkpoint's config.
    OKS-NMS (``nms_oks``) is applied only with detector boxes.
    """
    dev = D.resolve_device(device)
    model, cfg = model_from_checkpoint(checkpoint, dev)
    d = cfg.data
    dataset = PoseTrackClipDataset(str(ann), str(images), boxes=str(boxes), train=False, offsets=tuple(d.offsets),
                                   input_size=tuple(d.input_size), heatmap_size=tuple(d.heatmap_size),
                                   sigma=d.sigma, box_enlarge=d.box_enlarge,
                                   det_score_thresh=d.det_score_thresh if det_score_thresh is None else det_score_thresh)
    if len(dataset) == 0:
        raise ValueError(f"no person boxes to evaluate in {ann} (boxes={boxes})")
    preds = predict(model, dataset, batch_size=batch_size, flip_test=flip_test, device=dev,
                    amp=amp_dtype(cfg, dev), workers=workers, nms_oks=None if boxes == "gt" else nms_oks,
                    progress=progress)
    return score_and_write(preds, ann, out_dir)
