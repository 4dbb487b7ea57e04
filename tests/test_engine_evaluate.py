"""Inference + scoring on the real PoseTrack18 sample: oracle ~100 AP, checkpoints with gt and detector boxes."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from _engine_dummies import OracleModel, make_tiny_checkpoint
from ftp_pose.data import PoseTrackClipDataset



def _sample(root: Path) -> tuple[Path, Path, Path]:
    ann = root / "annotations" / "test_posetrack18_val.json"
    return ann, root, root / "annotations" / "test_posetrack18_human_detections.json"


def test_oracle_heatmaps_score_about_100_ap(posetrack18_root: Path, tmp_path: Path) -> None:
    """Target heatmaps -> flip test -> DARK decode -> inverse affine -> poseval AP: the whole path back."""
    from ftp_pose.engine.inference import predict, score_and_write

    ann, images, _ = _sample(posetrack18_root)
    ds = PoseTrackClipDataset(str(ann), str(images), boxes="gt")
    preds = predict(OracleModel(ds), ds, batch_size=4, flip_test=True, progress=False)
    assert len(preds) == len(ds) == 14
    for p, i in zip(preds, range(len(ds))):
        joints = ds[i]["meta"]["joints"].numpy()
        vis = joints[:, 2] > 0
        err = np.abs(np.asarray(p["keypoints"])[vis, :2] - joints[vis, :2]).max()
        assert err < 0.05, f"decoded joints off by {err} px"
    result = score_and_write(preds, ann, tmp_path)
    assert result.table["Mean"] > 99.0
    assert (tmp_path / "result.json").is_file() and (tmp_path / "result.md").is_file()
    assert sorted(p.name for p in (tmp_path / "predictions").glob("*.json")) == \
        sorted(p.name for p in (posetrack18_root / "annotations" / "val").glob("*.json"))


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.mark.parametrize("boxes", ["gt", "det"])
def test_evaluate_checkpoint_on_the_sample(posetrack18_root: Path, tmp_path: Path, tiny_ckpt: Path,
                                           boxes: str) -> None:
    from ftp_pose.engine.inference import evaluate_checkpoint

    ann, images, det = _sample(posetrack18_root)
    out = tmp_path / "eval"
    evaluate_checkpoint(tiny_ckpt, ann, images, boxes="gt" if boxes == "gt" else str(det), out_dir=out,
                        device="cpu")
    result = json.loads((out / "result.json").read_text())
    assert (out / "result.md").is_file()
    assert len(list((out / "predictions").glob("*.json"))) == 3
    mean = result["Mean"]  # the top-level key of result.json (an untrained model: any value in range)
    assert isinstance(mean, float) and math.isfinite(mean) and 0.0 <= mean <= 100.0


#: mean AP (%) that the shipped checkpoints/quick_cpu.pt must reach on the bundled PoseTrack18 sample
#: (14 people, ground-truth boxes, no flip test, as notebook 04): it measured 5.29 on a 2-core AMD EPYC.
#: Relative noise of 1e-3 or 1e-2 on every heatmap (far beyond CPU rounding) moved it to 5.14-5.30;
#: broken pipelines measured 4.36 (heatmaps mirrored without a flip), 4.27 (BGR input), 3.75
#: (heatmaps shifted by one pixel), 2.06 (joint channels permuted), 0.33 (wrong heatmap stride)
#: and 0.07 (all-zero heatmaps). A wrong flip test is not visible on these 14 people (checked
#: with the oracle above instead).
MIN_REAL_SAMPLE_AP = 4.6


def test_shipped_quick_checkpoint_on_the_real_sample_beats_a_floor(tmp_path: Path) -> None:
    from ftp_pose.engine.inference import evaluate_checkpoint
    from ftp_pose.engine.quick import QUICK_WEIGHTS
    from ftp_pose.paths import BUNDLED_DATA

    root = BUNDLED_DATA / "posetrack18"  # the bundled sample, not $FTP_POSE_DATA: the floor is for these 14 people
    evaluate_checkpoint(QUICK_WEIGHTS, root / "annotations" / "val", root, boxes="gt", out_dir=tmp_path,
                        flip_test=False, device="cpu", progress=False)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["Mean"] >= MIN_REAL_SAMPLE_AP, f"shipped quick checkpoint: {result['Mean']:.2f} mean AP on the " \
        f"real sample (measured 5.29; a broken decode or crop scores below {MIN_REAL_SAMPLE_AP})"
    assert result["Mean"] <= 100.0


def test_evaluate_missing_checkpoint_is_named(posetrack18_root: Path, tmp_path: Path) -> None:
    from ftp_pose.engine.inference import evaluate_checkpoint

    ann, images, _ = _sample(posetrack18_root)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        evaluate_checkpoint(tmp_path / "nope.pt", ann, images, out_dir=tmp_path)
