"""``python -m ftp_pose evaluate``: score prediction files, or run a checkpoint and score it.

Scoring mode (any method's predictions, as poseval does)::

    python -m ftp_pose evaluate --gt GT_DIR --pred PRED_DIR --out RESULT.json

Checkpoint mode (person boxes from the ground truth or a detection json)::

    python -m ftp_pose evaluate --checkpoint runs/x/best.pt --ann ANN --images ROOT \
        [--boxes gt|DETECTIONS.json] --out DIR

RESULT.json holds the paper's Table I columns (Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle,
Mean) in percent as top-level keys, plus ``per_joint`` and ``counts``; RESULT.md the same table.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ftp_pose.engine.scoring import score_predictions
from ftp_pose.errors import FTPPoseError


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    score = parser.add_argument_group("scoring mode")
    score.add_argument("--gt", help="ground truth: folder of per-video jsons, or one json")
    score.add_argument("--pred", help="predictions: folder of per-video jsons named like the ground truth")
    run = parser.add_argument_group("checkpoint mode")
    run.add_argument("--checkpoint", help="a training checkpoint (last.pt / best.pt)")
    run.add_argument("--ann", help="annotation json or folder of per-video jsons to evaluate on")
    run.add_argument("--images", help="image root that the annotation's file_name entries are relative to")
    run.add_argument("--boxes", default="gt", help="'gt' or a COCO-results detection json (default: gt)")
    run.add_argument("--batch-size", type=int, default=16)
    run.add_argument("--no-flip", action="store_true", help="disable the flip test")
    run.add_argument("--device", default="auto")
    parser.add_argument("--out", help="scoring mode: RESULT.json; checkpoint mode: output folder")


def run_cli(args: argparse.Namespace) -> int:
    if args.checkpoint:
        if not (args.ann and args.images):
            raise SystemExit("evaluate --checkpoint needs --ann and --images")
        from ftp_pose.engine.inference import evaluate_checkpoint

        out = args.out or "runs/eval"
        result = evaluate_checkpoint(args.checkpoint, args.ann, args.images, boxes=args.boxes, out_dir=out,
                                     batch_size=args.batch_size, flip_test=not args.no_flip, device=args.device)
        print(f"boxes: {args.boxes}; predictions in {Path(out) / 'predictions'}")
    elif args.gt and args.pred:
        try:
            result = score_predictions(args.gt, args.pred, args.out)
        except FTPPoseError:
            raise  # a known bad input (e.g. malformed json): the CLI prints one line naming the file, exit 2
        except (FileNotFoundError, ValueError) as e:  # bad input files: one clear line, no traceback
            raise SystemExit(f"evaluate: {e}") from e
    else:
        raise SystemExit("evaluate needs either --gt and --pred, or --checkpoint, --ann and --images")
    print(result.to_markdown())
    if args.out:
        print(f"wrote {args.out}")
    return 0


__all__ = ["score_predictions", "add_cli_arguments", "run_cli"]
