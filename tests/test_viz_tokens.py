"""Token geometry (kept index -> (row, col) -> pixel box) and the kept-token overlay."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ftp_pose.viz.tokens import cell_boxes, cell_mask, index_to_cell, kept_mask, overlay_kept_tokens, token_map


def test_index_to_cell_lrb_and_hrb_conventions() -> None:
    # LRB: frame * 192 + row * 12 + col on 16 x 12 grids
    f, r, c = index_to_cell(np.array([0, 11, 12, 191, 192, 2 * 192 + 5 * 12 + 7]), (16, 12), num_frames=3)
    assert f.tolist() == [0, 0, 0, 0, 1, 2]
    assert r.tolist() == [0, 0, 1, 15, 0, 5]
    assert c.tolist() == [0, 11, 0, 11, 0, 7]
    # HRB: row * 48 + col on the 64 x 48 grid; torch input works too
    f, r, c = index_to_cell(torch.tensor([47, 48, 64 * 48 - 1]), (64, 48))
    assert f.tolist() == [0, 0, 0] and r.tolist() == [0, 1, 63] and c.tolist() == [47, 0, 47]


def test_index_to_cell_rejects_out_of_range_and_2d() -> None:
    with pytest.raises(ValueError, match="out of range"):
        index_to_cell([576], (16, 12), num_frames=3)
    with pytest.raises(ValueError, match="1-D"):
        index_to_cell(np.zeros((2, 3), np.int64), (16, 12))


def test_cell_boxes_on_the_crop_and_heatmap_grid() -> None:
    # a backbone token is a 16 x 16 patch of the 256 x 192 crop
    b = cell_boxes(np.array([0, 15]), np.array([0, 11]), (16, 12), (256, 192))
    np.testing.assert_allclose(b, [[0, 0, 16, 16], [176, 240, 192, 256]])
    # an HR token is a 4 x 4 block of the crop and a single pixel of the 64 x 48 heatmap
    np.testing.assert_allclose(cell_boxes([10], [20], (64, 48), (256, 192)), [[80, 40, 84, 44]])
    np.testing.assert_allclose(cell_boxes([10], [20], (64, 48), (64, 48)), [[20, 10, 21, 11]])


def test_kept_mask_and_token_map() -> None:
    m = kept_mask([1, 3], 5)
    assert m.tolist() == [False, True, False, True, False]
    values = np.arange(2 * 6)
    np.testing.assert_array_equal(token_map(values, (2, 3), frame=1), [[6, 7, 8], [9, 10, 11]])
    with pytest.raises(ValueError, match="whole"):
        token_map(np.arange(7), (2, 3))


def test_cell_mask_covers_exactly_the_kept_cells() -> None:
    g = np.zeros((16, 12), bool)
    g[3, 4] = True
    m = cell_mask(g, (256, 192))
    ys, xs = np.nonzero(m)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (48, 63, 64, 79)
    assert m.sum() == 16 * 16


def test_overlay_darkens_pruned_and_tints_kept_cells() -> None:
    img = np.full((256, 192, 3), 200, np.uint8)
    kept = np.array([0 * 192 + 2 * 12 + 3, 1 * 192 + 0])  # frame 0 cell (2, 3); frame 1 cell (0, 0)
    out = overlay_kept_tokens(img, kept, (16, 12), frame=0, num_frames=3, color=(0, 0, 255), alpha=0.5,
                              dim=0.5, outline=False)
    assert out.shape == img.shape and out.dtype == np.uint8
    inside = out[2 * 16 + 8, 3 * 16 + 8]
    np.testing.assert_array_equal(inside, [100, 100, 228])          # tinted towards blue
    np.testing.assert_array_equal(out[8, 8], [100, 100, 100])      # frame 1's token is not drawn on frame 0
    assert (out == 100).all(-1).sum() == 256 * 192 - 16 * 16       # everything else darkened
    np.testing.assert_array_equal(img, 200)                        # input untouched


def test_every_kept_token_is_drawn_on_the_quick_grids() -> None:
    # quick checkpoint: 128 x 96 crops -> 8 x 6 LR grid (16 px cells), 32 x 24 HR grid (4 px cells)
    rng = np.random.default_rng(0)
    img = np.full((128, 96, 3), 200, np.uint8)
    for grid, n_frames, cell in (((8, 6), 3, 16), ((32, 24), 1, 4)):
        n = grid[0] * grid[1]
        kept = np.sort(rng.choice(n_frames * n, size=n_frames * n // 5, replace=False))
        for f in range(n_frames):
            out = overlay_kept_tokens(img, kept, grid, frame=f, num_frames=n_frames, color=(0, 0, 255),
                                      alpha=0.5, dim=0.5, outline=False)
            tinted = (out == [100, 100, 228]).all(-1)
            per_frame = int((kept // n == f).sum())
            assert tinted.sum() == per_frame * cell * cell          # every kept token, one full cell each
            _, r, c = index_to_cell(kept[kept // n == f], grid, n_frames)
            boxes = cell_boxes(r, c, grid, (128, 96)).astype(int)
            for x0, y0, x1, y1 in boxes:                               # ... exactly at its pixel box
                assert tinted[y0:y1, x0:x1].all()
