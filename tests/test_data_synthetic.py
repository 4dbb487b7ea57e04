"""Synthetic PoseTrack-format videos: determinism, loadability, label sanity."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ftp_pose.data import PoseTrackClipDataset, load_posetrack
from ftp_pose.data.synthetic import generate_synthetic_posetrack

SMALL = dict(n_videos=1, n_val_videos=1, n_frames=4, size=(192, 144), progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = _files(generate_synthetic_posetrack(tmp_path / "a", seed=7, **SMALL)["train"].parent.parent)
    b = _files(generate_synthetic_posetrack(tmp_path / "b", seed=7, **SMALL)["train"].parent.parent)
    c = _files(generate_synthetic_posetrack(tmp_path / "c", seed=8, **SMALL)["train"].parent.parent)
    assert a.keys() == b.keys() == c.keys()
    assert any(k.endswith(".jpg") for k in a) and "annotations/train.json" in a
    assert a == b
    assert a["annotations/train.json"] != c["annotations/train.json"]
    assert a["images/train/000001/000000.jpg"] != c["images/train/000001/000000.jpg"]


def test_layout_and_loadable(synth_root: Path) -> None:
    train = load_posetrack(synth_root / "annotations" / "train.json")
    per_video = load_posetrack(synth_root / "annotations" / "train")
    val = load_posetrack(synth_root / "annotations" / "val.json")
    assert len(train.videos) == 2 and len(val.videos) == 1 and len(per_video.source) == 2
    assert set(train.images) == set(per_video.images)
    assert not set(train.videos) & set(val.videos)        # splits never share a video
    assert all(len(ids) == 6 for ids in train.videos.values())
    assert all(f.is_labeled and f.nframes == 6 for f in train.images.values())
    assert train.check_images(synth_root) == 12
    assert train.num_people > 0
    data = json.loads((synth_root / "annotations" / "train.json").read_text())
    im = data["images"][0]
    assert im["frame_id"] == im["id"] == 10000000000 + int(im["vid_id"]) * 10000
    assert im["ignore_regions_x"] == [] and (synth_root / im["file_name"]).is_file()
    ds = PoseTrackClipDataset(synth_root / "annotations" / "train.json", synth_root, train=True)
    assert len(ds) > 0 and ds[0]["clip"].shape == (3, 3, 256, 192)


def test_labels_are_consistent(synth_root: Path) -> None:
    s = load_posetrack(synth_root / "annotations" / "train.json")
    n_vis = 0
    for image_id, anns in s.annotations.items():
        info = s.images[image_id]
        tracks = [a.track_id for a in anns]
        assert len(set(tracks)) == len(tracks)
        for a in anns:
            k = a.keypoints
            vis = k[:, 2] > 0
            assert vis.any()
            assert set(np.unique(k[:, 2])) <= {0.0, 1.0}
            assert np.all(k[~vis, :2] == 0)
            assert np.all((k[vis, 0] >= -0.5) & (k[vis, 0] < info.width) & (k[vis, 1] >= -0.5) & (k[vis, 1] < info.height))
            x, y, w, h = a.bbox
            assert np.all((k[vis, 0] >= x) & (k[vis, 0] <= x + w) & (k[vis, 1] >= y) & (k[vis, 1] <= y + h))
            assert a.bbox_head is not None and a.bbox_head[2] > 0
            n_vis += int(vis.sum())
    assert n_vis > 50


def test_visible_joints_are_drawn_over_the_background(tmp_path: Path) -> None:
    """Same videos rendered without people: at a visible joint the pixel must differ."""
    kw = dict(n_videos=2, n_val_videos=0, n_frames=3, size=(256, 192), seed=3, progress=False)
    full = generate_synthetic_posetrack(tmp_path / "full", **kw)["train"]
    bare = generate_synthetic_posetrack(tmp_path / "bare", draw_people=False, **kw)["train"]
    assert full.read_bytes() == bare.read_bytes()  # identical labels
    s = load_posetrack(full)
    diffs = []
    for image_id, anns in s.annotations.items():
        name = s.images[image_id].file_name
        a_img = cv2.imread(str(tmp_path / "full" / name)).astype(int)
        b_img = cv2.imread(str(tmp_path / "bare" / name)).astype(int)
        for a in anns:
            for x, y, v in a.keypoints:
                if v > 0:
                    xi, yi = int(round(x)), int(round(y))
                    diffs.append(np.abs(a_img[yi, xi] - b_img[yi, xi]).sum())
    diffs = np.array(diffs)
    assert len(diffs) > 30
    assert np.mean(diffs > 30) > 0.9, np.percentile(diffs, [5, 25, 50])


@pytest.mark.parametrize("bad", [dict(n_videos=0), dict(people_per_frame=(2, 1)), dict(difficulty="extreme"),
                                 dict(size=(16, 16))])
def test_bad_arguments(bad: dict, tmp_path: Path) -> None:
    kw = dict(SMALL, **bad)
    with pytest.raises(ValueError):
        generate_synthetic_posetrack(tmp_path, **kw)


def test_synth_cli(tmp_path: Path, capsys) -> None:
    from ftp_pose.cli import main

    out = tmp_path / "cli"
    assert main(["synth", "--out", str(out), "--videos", "1", "--val-videos", "1", "--frames", "2",
                 "--size", "160x120", "--seed", "1"]) == 0
    assert (out / "annotations" / "val.json").is_file()
    assert cv2.imread(str(out / "images" / "train" / "000001" / "000001.jpg")).shape == (120, 160, 3)
    assert str(out) in capsys.readouterr().out
