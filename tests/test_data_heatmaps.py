"""The heatmap codec and the affine crop helpers."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from ftp_pose.data import (affine_points, box_to_center_scale, decode_heatmaps, encode_heatmaps, flip_heatmaps,
                           get_affine_transform, heatmap_to_image_coords, input_to_heatmap, invert_affine)
from ftp_pose.data.transforms import crop_frames


def _random_joints(rng: np.random.Generator, n: int = 17, border: float = 12) -> np.ndarray:
    """Random joints in a 256 x 192 input, at least ``border`` input pixels from its edge."""
    return np.stack([rng.uniform(border, 191 - border, n), rng.uniform(border, 255 - border, n)], 1)


# DARK without blur inverts the Gaussian exactly wherever the argmax has 4 neighbours; the
# 11 x 11 blur (for real, noisy predictions) bends Gaussians cut by the border, so that case is
# checked on joints at least 6 heatmap pixels inside.
@pytest.mark.parametrize("refine,blur,border,tol", [("dark", 0, 6, 1e-3), ("dark", 11, 24, 0.05),
                                                     ("quarter", 0, 6, 0.55), (None, 0, 6, 0.75)])
def test_encode_then_decode_returns_the_joint(refine, blur, border, tol) -> None:
    rng = np.random.default_rng(0)
    xy = _random_joints(rng, 50, border)
    hm, w = encode_heatmaps(xy, np.ones(50))
    assert hm.shape == (50, 64, 48) and hm.dtype == np.float32 and w.sum() == 50
    coords, maxvals = decode_heatmaps(hm[None], refine=refine, blur_kernel=blur)
    err = np.abs(coords[0] - input_to_heatmap(xy)).max()
    assert err < tol, err
    assert np.all(maxvals > 0.5)


def test_invisible_and_outside_joints_get_zero_weight() -> None:
    xy = np.full((17, 2), 100.0)
    xy[1] = (-10, 50)
    xy[2] = (100, 300)
    vis = np.ones(17)
    vis[3] = 0
    hm, w = encode_heatmaps(xy, vis)
    assert w[[1, 2, 3]].sum() == 0 and w.sum() == 14
    assert hm[[1, 2, 3]].sum() == 0


def test_decode_accepts_torch_and_batches() -> None:
    rng = np.random.default_rng(1)
    hms = np.stack([encode_heatmaps(_random_joints(rng), np.ones(17))[0] for _ in range(3)])
    c_np, v_np = decode_heatmaps(hms)
    c_t, v_t = decode_heatmaps(torch.from_numpy(hms))
    assert c_np.shape == (3, 17, 2) and v_np.shape == (3, 17)
    np.testing.assert_allclose(c_np, c_t)


def test_affine_matches_hrnet_three_point_construction() -> None:
    center, scale, rot, size = np.array([300.0, 200.0]), np.array([150.0, 200.0]), 30.0, (192, 256)
    # HRNet: src centre / a point half a width "up" (rotated) / perpendicular third point
    r = np.deg2rad(rot)
    src_dir = np.array([0 * np.cos(r) - (-75) * np.sin(r), 0 * np.sin(r) + (-75) * np.cos(r)])
    src = np.float32([center, center + src_dir, center + src_dir + np.array([src_dir[1], -src_dir[0]])])
    dst_c = np.array([96.0, 128.0])
    dst_dir = np.array([0.0, -96.0])
    dst = np.float32([dst_c, dst_c + dst_dir, dst_c + dst_dir + np.array([dst_dir[1], -dst_dir[0]])])
    ref = cv2.getAffineTransform(src, dst)
    m = get_affine_transform(center, scale, rot, size)
    np.testing.assert_allclose(m, ref, atol=1e-3)
    np.testing.assert_allclose(get_affine_transform(center, scale, rot, size, inv=True), invert_affine(m), atol=1e-4)
    np.testing.assert_allclose(affine_points(center[None], m)[0], dst_c, atol=1e-4)


def test_box_to_center_scale_fixes_aspect_and_enlarges() -> None:
    c, s = box_to_center_scale([10, 20, 100, 50], aspect=0.75, enlarge=1.25)
    np.testing.assert_allclose(c, [60, 45])
    np.testing.assert_allclose(s, [125, 125 / 0.75], rtol=1e-6)
    c, s = box_to_center_scale([0, 0, 30, 200], aspect=0.75, enlarge=1.0)
    np.testing.assert_allclose(s, [150, 200], rtol=1e-6)


def test_crop_puts_image_pixels_where_the_affine_says() -> None:
    img = np.zeros((120, 160, 3), np.uint8)
    img[40, 70] = 255
    m = get_affine_transform([80, 60], [60, 80], 20.0, (48, 64))
    crop = crop_frames([img], m, (48, 64))[0]
    peak = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    expected = affine_points(np.array([[70.0, 40.0]]), m)[0]
    assert abs(peak[1] - expected[0]) <= 1 and abs(peak[0] - expected[1]) <= 1


def test_heatmap_to_image_roundtrip() -> None:
    rng = np.random.default_rng(2)
    joints_img = np.stack([rng.uniform(300, 420, 17), rng.uniform(100, 300, 17)], 1)
    m = get_affine_transform([360, 200], [180, 240], -25.0, (192, 256))
    hm, _ = encode_heatmaps(affine_points(joints_img, m), np.ones(17))
    coords, _ = decode_heatmaps(hm[None])
    back = heatmap_to_image_coords(coords, invert_affine(m)[None])
    assert np.abs(back[0] - joints_img).max() < 0.1


def test_flip_heatmaps_numpy_and_torch_agree_and_invert() -> None:
    rng = np.random.default_rng(3)
    hm = rng.random((2, 17, 8, 6)).astype(np.float32)
    f = flip_heatmaps(hm)
    np.testing.assert_allclose(f[:, 5], hm[:, 6, :, ::-1])
    np.testing.assert_allclose(f[:, 0], hm[:, 0, :, ::-1])
    np.testing.assert_allclose(flip_heatmaps(f), hm)
    np.testing.assert_allclose(flip_heatmaps(torch.from_numpy(hm)).numpy(), f)


@pytest.mark.parametrize("input_size,heatmap_size,sigma", [((256, 192), (64, 48), 2.0), ((128, 96), (32, 24), 1.5)])
def test_codec_encode_then_decode_in_input_pixels(input_size, heatmap_size, sigma) -> None:
    from ftp_pose.data import HeatmapCodec

    codec = HeatmapCodec(input_size, heatmap_size, sigma, blur_kernel=0)
    rng = np.random.default_rng(4)
    s = input_size[0] / heatmap_size[0]
    border = 6 * s  # 6 heatmap pixels inside: the argmax has its 4 neighbours
    xy = np.stack([rng.uniform(border, input_size[1] - 1 - border, 17),
                   rng.uniform(border, input_size[0] - 1 - border, 17)], 1)
    hm, w = codec.encode(np.concatenate([xy, np.ones((17, 1))], 1))  # J x 3: x, y, visibility
    assert hm.shape == (17, *heatmap_size) and w.all()
    kp, scores = codec.decode(hm[None])
    assert kp.shape == (1, 17, 2) and np.abs(kp[0] - xy).max() < 0.01  # sub-pixel, in input pixels
    assert (scores > 0.85).all() and (scores <= 1).all()  # the Gaussian at the nearest pixel
    with pytest.raises(ValueError, match="heatmap_size"):
        HeatmapCodec(input_size, (heatmap_size[0] + 1, heatmap_size[1])).decode(hm[None])


def test_codec_decode_to_image_equals_the_free_functions() -> None:
    from ftp_pose.data import HeatmapCodec

    rng = np.random.default_rng(5)
    codec = HeatmapCodec((256, 192), (64, 48))
    hms, invs = [], []
    for i in range(3):
        m = get_affine_transform([360 + 10 * i, 200], [180, 240], -25.0 + 10 * i, (192, 256))
        hm, _ = codec.encode(_random_joints(rng))
        hms.append(hm + 0.01 * rng.random(hm.shape, dtype=np.float32))  # not exactly Gaussian: blur matters
        invs.append(invert_affine(m))
    hms, invs = torch.from_numpy(np.stack(hms)), np.stack(invs)
    coords, maxvals = decode_heatmaps(hms, refine="dark")
    old = heatmap_to_image_coords(coords, invs, heatmap_size=(64, 48), input_size=(256, 192))
    new, scores = codec.decode_to_image(hms, invs)
    assert np.array_equal(new, old) and np.array_equal(scores, maxvals)
    one, _ = codec.decode_to_image(hms[:1], invs[0])  # one 2 x 3 matrix for all
    assert np.array_equal(one, old[:1])


# ----------------------------------------------------------------------------- the pixel convention, by hand
# 256 x 192 crops, 64 x 48 heatmaps: stride 4, pixel centres on integers, so input pixel x maps to
# heatmap pixel (x + 0.5) / 4 - 0.5 and back x = (x_hm + 0.5) * 4 - 0.5.

def test_codec_encodes_a_joint_at_hand_computed_heatmap_cells() -> None:
    from ftp_pose.data import HeatmapCodec

    codec = HeatmapCodec((256, 192), (64, 48), sigma=2.0)
    kp = np.zeros((17, 3))
    kp[0] = (37.5, 21.5, 1)  # (37.5 + 0.5) / 4 - 0.5 = 9.0, (21.5 + 0.5) / 4 - 0.5 = 5.0: exactly on cell (9, 5)
    kp[1] = (41.0, 22.5, 1)  # 41.5 / 4 - 0.5 = 9.875, 23 / 4 - 0.5 = 5.25: between cells
    hm, w = codec.encode(kp)
    assert w.tolist() == [1.0, 1.0] + [0.0] * 15 and not hm[2:].any()
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (5, 9)  # (row, col)
    two_sigma_sq = 2 * 2.0 ** 2
    for (col, row), d2 in {(9, 5): 0.0, (10, 5): 1.0, (11, 5): 4.0, (9, 3): 4.0, (10, 6): 2.0}.items():
        assert hm[0, row, col] == pytest.approx(math.exp(-d2 / two_sigma_sq), abs=1e-6), (col, row)
    assert np.unravel_index(hm[1].argmax(), hm[1].shape) == (5, 10)
    for (col, row) in [(10, 5), (9, 5), (10, 6), (12, 4)]:
        d2 = (col - 9.875) ** 2 + (row - 5.25) ** 2
        assert hm[1, row, col] == pytest.approx(math.exp(-d2 / two_sigma_sq), abs=1e-6), (col, row)


@pytest.mark.parametrize("x,inside", [(-0.6, False), (-0.4, True), (191.4, True), (191.6, False)])
def test_codec_weight_is_zero_exactly_off_the_heatmap(x: float, inside: bool) -> None:
    """A joint counts while its heatmap position is in [-0.5, w - 0.5): input x in [-0.5, 191.5)."""
    from ftp_pose.data import HeatmapCodec

    hm, w = HeatmapCodec((256, 192), (64, 48)).encode(np.array([[x, 100.0, 1.0]]))
    assert w[0] == float(inside) and bool(hm[0].any()) == inside


def _hand_heatmap(col: int, row: int, patch: np.ndarray) -> np.ndarray:
    """1 x 1 x 64 x 48 zeros with the 3 x 3 ``patch`` centred on (col, row)."""
    hm = np.zeros((1, 1, 64, 48), np.float32)
    hm[0, 0, row - 1:row + 2, col - 1:col + 2] = patch
    return hm


#: rows top to bottom: the peak 1.0 at the centre, right 0.8 > left 0.5, up 0.6 > down 0.4
PATCH = np.array([[0.3, 0.6, 0.3],
                  [0.5, 1.0, 0.8],
                  [0.3, 0.4, 0.3]], np.float32)


def test_codec_decodes_a_hand_built_heatmap_with_each_refinement() -> None:
    from ftp_pose.data import HeatmapCodec

    codec = HeatmapCodec((256, 192), (64, 48), blur_kernel=0)
    hm = _hand_heatmap(7, 3, PATCH)

    def to_input(x_hm: float, y_hm: float) -> list[float]:
        return [(x_hm + 0.5) * 4 - 0.5, (y_hm + 0.5) * 4 - 0.5]

    kp, score = codec.decode(hm, refine=None)  # integer argmax: cell (7, 3)
    assert to_input(7, 3) == [29.5, 13.5]
    np.testing.assert_allclose(kp[0, 0], [29.5, 13.5])
    assert score[0, 0] == 1.0
    kp, _ = codec.decode(hm, refine="quarter")  # a quarter pixel towards the higher neighbour: right, up
    assert to_input(7.25, 2.75) == [30.5, 12.5]
    np.testing.assert_allclose(kp[0, 0], [30.5, 12.5])
    # DARK: one Newton step on the log-heatmap, offset = -H^-1 g with central differences; the
    # four corners are equal, so the mixed derivative is 0 and each axis is -f'/f'' on its own
    kp, _ = codec.decode(hm, refine="dark")
    ox = -0.5 * (math.log(0.8) - math.log(0.5)) / (math.log(0.8) + math.log(0.5))  # f'' = ln R - 2 ln 1 + ln L
    oy = -0.5 * (math.log(0.4) - math.log(0.6)) / (math.log(0.4) + math.log(0.6))  # rows grow downwards
    assert 0 < ox < 0.5 and -0.5 < oy < 0
    np.testing.assert_allclose(kp[0, 0], to_input(7 + ox, 3 + oy), atol=1e-4)


def test_codec_does_not_refine_a_peak_on_the_heatmap_border() -> None:
    from ftp_pose.data import HeatmapCodec

    codec = HeatmapCodec((256, 192), (64, 48), blur_kernel=0)
    hm = np.zeros((1, 1, 64, 48), np.float32)
    hm[0, 0, 10, 0], hm[0, 0, 10, 1], hm[0, 0, 9, 0] = 1.0, 0.9, 0.5  # column 0: no left neighbour
    for refine in (None, "quarter", "dark"):
        kp, _ = codec.decode(hm, refine=refine)
        np.testing.assert_allclose(kp[0, 0], [(0 + 0.5) * 4 - 0.5, (10 + 0.5) * 4 - 0.5], err_msg=str(refine))


def test_codec_decode_to_image_applies_the_inverse_affine_by_hand() -> None:
    """A crop that is the image shifted by (100, 50) and scaled by 2: image = 2 * crop + (100, 50)."""
    from ftp_pose.data import HeatmapCodec

    inverse = np.array([[2.0, 0.0, 100.0], [0.0, 2.0, 50.0]], np.float32)
    hm = _hand_heatmap(7, 3, PATCH)
    xy, _ = HeatmapCodec((256, 192), (64, 48)).decode_to_image(hm, inverse, refine=None)
    np.testing.assert_allclose(xy[0, 0], [2 * 29.5 + 100, 2 * 13.5 + 50])
