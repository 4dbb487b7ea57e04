"""Scoring predictions: PoseTrack jsons on disk -> APResult, ``result.json`` / ``result.md``, AP tables."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ftp_pose.io import write_text
from ftp_pose.metrics import APResult, evaluate_ap


def score_predictions(gt: str | Path, pred: str | Path, out: str | Path | None = None) -> APResult:
    """Score per-video prediction jsons against per-video ground truth; write ``out`` (+ ``.md``)."""
    result = evaluate_ap(gt, pred)
    if out is not None:
        out = Path(out)
        write_text(out, result.to_json() + "\n")
        write_text(out.with_suffix(".md"), result.to_markdown() + "\n")
    return result


def score_and_write(predictions: list[dict], gt_ann: str | Path, out_dir: str | Path,
                    pred_subdir: str = "predictions", stem: str = "result") -> APResult:
    """Write per-video PoseTrack prediction jsons to ``out_dir/pred_subdir``, score them against
    ``gt_ann``, write ``out_dir/<stem>.json`` and ``<stem>.md``; return the APResult."""
    from ftp_pose.metrics import write_posetrack_predictions

    out_dir = Path(out_dir)
    pred_dir = out_dir / pred_subdir
    write_posetrack_predictions(pred_dir, gt_ann, predictions)
    return score_predictions(gt_ann, pred_dir, out_dir / f"{stem}.json")


def ap_table(result: Any) -> dict[str, float]:
    """``{"Head": .., "Shoulder": .., ..., "Mean": ..}`` (percent, NaN -> 0) from an APResult."""
    table = dict(result.table)
    return {k: (0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)) for k, v in table.items()}
