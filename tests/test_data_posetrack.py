"""PoseTrack loading, neighbour frames, crops and targets, flip, detection boxes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ftp_pose.data import (AugmentConfig, PoseTrackClipDataset, decode_heatmaps, denormalize, flip_heatmaps,
                           flip_permutation, heatmap_to_image_coords, invert_affine, load_posetrack)
from ftp_pose.keypoints import JOINT_NAMES

LW, RW = JOINT_NAMES.index("left_wrist"), JOINT_NAMES.index("right_wrist")


@pytest.fixture(scope="module")
def real_ann(posetrack18_root: Path) -> Path:
    return posetrack18_root / "annotations" / "test_posetrack18_val.json"


def test_load_real_sample_merged_and_per_video(posetrack18_root: Path, real_ann: Path) -> None:
    merged = load_posetrack(real_ann)
    per_video = load_posetrack(posetrack18_root / "annotations" / "val")
    for s in (merged, per_video):
        assert len(s.videos) == 3
        assert s.num_people == 14
        assert len(s.labeled_image_ids()) == 3
    assert set(merged.images) == set(per_video.images)
    assert len(per_video.source) == 3
    a = merged.annotations[10128340000][0]
    assert a.keypoints.shape == (17, 3) and a.bbox_head is not None
    assert merged.check_images(posetrack18_root) == 3


def test_real_sample_neighbours_repeat_the_key_frame(real_ann: Path) -> None:
    s = load_posetrack(real_ann)
    for image_id in s.labeled_image_ids():
        assert s.clip_ids(image_id, [-1, 0, 1]) == [image_id] * 3


def test_neighbours_inside_and_at_both_boundaries(synth_root: Path) -> None:
    s = load_posetrack(synth_root / "annotations" / "train.json")
    vid, ids = next(iter(s.videos.items()))
    assert [s.images[i].frame_index for i in ids] == list(range(6))
    assert s.clip_ids(ids[3], [-1, 0, 1]) == [ids[2], ids[3], ids[4]]
    assert s.clip_ids(ids[0], [-1, 0, 1]) == [ids[0], ids[0], ids[1]]      # start: t-1 repeats t
    assert s.clip_ids(ids[-1], [-1, 0, 1]) == [ids[-2], ids[-1], ids[-1]]  # end: t+1 repeats t
    assert s.neighbour(ids[1], -2) == ids[1] and s.neighbour(ids[2], -2) == ids[0]


def test_unlisted_neighbour_repeats_the_key_frame(synth_root: Path, tmp_path: Path) -> None:
    data = json.loads((synth_root / "annotations" / "train.json").read_text())
    gone = data["images"][3]["id"]  # frame 3 of the first video
    data["images"] = [im for im in data["images"] if im["id"] != gone]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != gone]
    path = tmp_path / "holes.json"
    path.write_text(json.dumps(data))
    s = load_posetrack(path)
    ids = s.videos[data["images"][0]["vid_id"]]
    f2, f4 = ids[2], ids[3]
    assert s.images[f4].frame_index == 4
    assert s.clip_ids(f2, [-1, 0, 1]) == [ids[1], f2, f2]
    assert s.clip_ids(f4, [-1, 0, 1]) == [f4, f4, ids[4]]


def test_item_layout_and_collate(real_ann: Path, posetrack18_root: Path) -> None:
    ds = PoseTrackClipDataset(real_ann, posetrack18_root)
    assert len(ds) == 14
    x = ds[0]
    assert x["clip"].shape == (3, 3, 256, 192) and x["clip"].dtype == torch.float32
    assert x["heatmaps"].shape == (17, 64, 48) and x["target_weight"].shape == (17,)
    m = x["meta"]
    assert m["key_index"] == 1 and m["affine"].shape == (2, 3) and m["joints"].shape == (17, 3)
    assert m["box_score"] == 1.0 and not m["flipped"]
    # the boundary clip repeats the key frame
    assert torch.equal(x["clip"][0], x["clip"][1]) and torch.equal(x["clip"][2], x["clip"][1])
    # invisible joints (PoseTrack ears) have zero weight and an empty heatmap
    assert x["target_weight"][3] == 0 and x["heatmaps"][3].abs().sum() == 0
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["clip"].shape == (4, 3, 3, 256, 192)
    assert batch["meta"]["affine"].shape == (4, 2, 3) and len(batch["meta"]["vid_id"]) == 4
    frames = denormalize(x["clip"])
    assert frames.shape == (3, 256, 192, 3) and frames.dtype == np.uint8


def _decoded_in_image(sample: dict) -> np.ndarray:
    coords, _ = decode_heatmaps(sample["heatmaps"][None], refine="dark", blur_kernel=0)  # exact on targets
    inv = invert_affine(sample["meta"]["affine"].numpy())
    return heatmap_to_image_coords(coords, inv)[0]


@pytest.mark.parametrize("which", ["real", "synthetic"])
def test_target_peaks_map_back_to_the_gt_joints(which: str, real_ann: Path, posetrack18_root: Path,
                                                 synth_root: Path) -> None:
    if which == "real":
        ds = PoseTrackClipDataset(real_ann, posetrack18_root)
    else:
        ds = PoseTrackClipDataset(synth_root / "annotations" / "val.json", synth_root)
    n_checked = 0
    for i in range(min(len(ds), 14)):
        x = ds[i]
        w = x["target_weight"].numpy() > 0
        gt = x["meta"]["joints"].numpy()
        assert np.all(w <= (gt[:, 2] > 0))
        err = np.linalg.norm(_decoded_in_image(x)[w] - gt[w, :2], axis=1)
        assert err.max() < 1.0, f"sample {i}: joint off by {err.max():.2f} px"
        n_checked += int(w.sum())
    assert n_checked > 20


def test_augmented_targets_follow_the_joints(synth_root: Path) -> None:
    """Scale, rotation, half-body and flip: decoding the target still lands on the gt joint
    (its left/right partner when flipped)."""
    ds = PoseTrackClipDataset(synth_root / "annotations" / "train.json", synth_root, train=True,
                              aug=AugmentConfig(half_body_prob=0.5))
    perm = np.array(flip_permutation())
    torch.manual_seed(0)
    flipped_seen = rotated_seen = 0
    errors: list[float] = []
    for i in range(12):
        x = ds[i % len(ds)]
        m = x["meta"]
        w = x["target_weight"].numpy() > 0
        gt = m["joints"].numpy()
        if m["flipped"]:
            gt = gt[perm]
            flipped_seen += 1
        rotated_seen += m["rotation"] != 0
        err = np.linalg.norm(_decoded_in_image(x)[w] - gt[w, :2], axis=1)
        errors.extend(err.tolist())
        # a joint on the outermost heatmap pixel is not refined: off by <= 0.5 heatmap px = 2 input px
        image_px_per_input_px = float(m["scale"][0]) / 192
        assert err.size == 0 or err.max() < 2 * np.sqrt(2) * image_px_per_input_px + 0.05
    assert flipped_seen > 0 and rotated_seen > 0
    assert np.median(errors) < 0.05


def test_augmentation_is_seeded_by_torch(synth_root: Path) -> None:
    ds = PoseTrackClipDataset(synth_root / "annotations" / "train.json", synth_root, train=True)
    torch.manual_seed(3)
    a = [ds[i]["meta"]["affine"] for i in range(3)]
    torch.manual_seed(3)
    b = [ds[i]["meta"]["affine"] for i in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_flip_swaps_left_and_right(synth_root: Path) -> None:
    ann = synth_root / "annotations" / "val.json"
    plain = PoseTrackClipDataset(ann, synth_root)
    only_flip = AugmentConfig(scale_factor=0.0, rotation_factor=0.0, rot_prob=0.0, flip=True, flip_prob=1.0,
                              half_body_prob=0.0)
    flipped = PoseTrackClipDataset(ann, synth_root, train=True, aug=only_flip, min_visible_joints=0)
    assert len(plain) == len(flipped)
    i = max(range(len(plain)), key=lambda k: int((plain.items[k].joints[[LW, RW], 2] > 0).sum()))
    a, b = plain[i], flipped[i]
    assert b["meta"]["flipped"]
    ha, hb = a["heatmaps"].numpy(), b["heatmaps"].numpy()
    assert ha[RW].max() > 0.5
    np.testing.assert_allclose(hb[LW], ha[RW][:, ::-1], atol=1e-4)
    np.testing.assert_allclose(hb[RW], ha[LW][:, ::-1], atol=1e-4)
    np.testing.assert_array_equal(b["target_weight"].numpy(), a["target_weight"].numpy()[flip_permutation()])
    # the whole heatmap stack: flip_heatmaps(unflipped) == flipped sample's targets
    np.testing.assert_allclose(flip_heatmaps(ha[None])[0], hb, atol=1e-4)
    # and the pixels are mirrored too
    fa, fb = denormalize(a["clip"]).astype(int), denormalize(b["clip"]).astype(int)
    assert np.abs(fb - fa[:, :, ::-1]).mean() < 1.0


def test_detection_boxes_mode(real_ann: Path, posetrack18_root: Path) -> None:
    det_path = posetrack18_root / "annotations" / "test_posetrack18_human_detections.json"
    dets = json.loads(det_path.read_text())
    listed = set(load_posetrack(real_ann).images)
    for thresh in (0.2, 0.5):
        expected = sum(1 for d in dets if d["score"] >= thresh and d["image_id"] in listed)
        ds = PoseTrackClipDataset(real_ann, posetrack18_root, boxes=det_path, det_score_thresh=thresh)
        assert len(ds) == expected
    x = ds[0]
    assert x["meta"]["track_id"] == -1 and x["meta"]["box_score"] >= 0.5
    assert x["target_weight"].sum() == 0 and x["meta"]["joints"].abs().sum() == 0
