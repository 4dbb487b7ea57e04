"""Grid upsampling as a matrix product equals F.interpolate; its users agree with the old code."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ftp_pose.models.upsample import interp_matrix, interp_sparse, upsample_rows, upsample_tokens


def _ref(x: torch.Tensor, factor: int, mode: str) -> torch.Tensor:
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(x, scale_factor=factor, mode=mode, **kw)


@pytest.mark.parametrize("method", ["matmul", "interpolate", "auto"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("size,factor", [((16, 12), 4), ((3, 5), 2), ((1, 4), 3), ((7, 7), 1)])
def test_matrix_equals_interpolate(method: str, mode: str, size: tuple[int, int], factor: int) -> None:
    torch.manual_seed(0)
    h, w = size
    x = torch.randn(2, 5, h, w)
    ref = _ref(x, factor, mode)  # 2 x 5 x fh x fw
    up = upsample_tokens(x.flatten(2).transpose(1, 2), size, factor, mode, method=method)
    assert up.shape == (2, h * w * factor * factor, 5)
    assert torch.allclose(up.transpose(1, 2).reshape(ref.shape), ref, atol=1e-5)
    rows = upsample_rows(x.flatten(2), size, factor, mode, method=method)  # each channel as a row
    assert torch.allclose(rows, ref.flatten(2), atol=1e-5)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_matrix_rows_and_sparse_form(mode: str) -> None:
    w = interp_matrix((4, 3), 4, mode)
    assert w.shape == (192, 12)
    assert torch.allclose(w.sum(1), torch.ones(192))
    assert int((w != 0).sum(1).max()) <= (4 if mode == "bilinear" else 1)
    idx, wt = interp_sparse((4, 3), 4, mode)
    dense = torch.zeros(192, 12).scatter_add_(1, idx.long(), wt)
    assert torch.equal(dense, w)


def test_matrix_is_cached_per_dtype() -> None:
    a = interp_matrix((4, 3), 2, "bilinear")
    assert interp_matrix((4, 3), 2, "bilinear") is a
    assert interp_matrix((4, 3), 2, "bilinear", dtype=torch.float64).dtype == torch.float64


def test_bad_mode_and_shape() -> None:
    with pytest.raises(ValueError):
        interp_matrix((4, 3), 2, "bicubic")
    with pytest.raises(ValueError):
        upsample_tokens(torch.zeros(1, 11, 2), (4, 3), 2)
    with pytest.raises(ValueError):
        upsample_tokens(torch.zeros(1, 12, 2), (4, 3), 2, method="fft")


def test_users_match_interpolate() -> None:
    """HRB upsampling and the baseline head give what F.interpolate gave; no new state_dict keys."""
    from ftp_pose.models.heads import SimpleUpsampleHead
    from ftp_pose.models.mgfe import HighResolutionUpsample

    torch.manual_seed(0)
    up = HighResolutionUpsample(8, (4, 3), 4)
    x = torch.randn(2, 12, 8)
    ref = _ref(x.transpose(1, 2).reshape(2, 8, 4, 3), 4, "bilinear").flatten(2).transpose(1, 2)
    assert torch.allclose(up.interpolate(x), ref, atol=1e-6)
    assert set(up.state_dict()) == {"proj.weight", "proj.bias"}
    head = SimpleUpsampleHead(8, 5, (4, 3))
    with torch.no_grad():
        z = head.norm(x).transpose(1, 2).reshape(2, 8, 4, 3)
        expected = head.conv(F.relu(_ref(z, 4, "bilinear")))
        assert torch.allclose(head(x), expected, atol=1e-5)
    assert set(head.state_dict()) == {"norm.weight", "norm.bias", "conv.weight", "conv.bias"}



def test_cuda_code_path_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The matmul path (what CUDA runs) gives the same heatmaps and kept tokens, up to which copy
    of a border token (an exact duplicate of the bilinear upsampling) the rounding picks."""
    from ftp_pose.models import build_model, upsample

    clips = torch.randn(2, 3, 3, 256, 192, generator=torch.Generator().manual_seed(0))
    outs = {}
    for method in ("interpolate", "matmul"):
        monkeypatch.setattr(upsample, "_matmul", lambda x, m, method=method: method == "matmul")
        for name in ("baseline", "ftp_pose"):
            torch.manual_seed(0)
            model = build_model(name, backbone="tiny", depth=1, lrb_depth=1, refine_depth=1).eval()
            with torch.no_grad():
                outs[method, name] = model(clips, return_info=True)
    assert torch.allclose(outs["interpolate", "baseline"][0], outs["matmul", "baseline"][0], atol=1e-5)
    info0, info1 = outs["interpolate", "ftp_pose"][1], outs["matmul", "ftp_pose"][1]
    assert torch.equal(info0["kept_index_l"], info1["kept_index_l"])
    # copy group of each of the 64 x 48 HR tokens: equal rows of the interpolation matrix
    _, group = torch.unique(interp_matrix((16, 12), 4, "bilinear"), dim=0, return_inverse=True)
    kept = [torch.sort(group[info["kept_index_h"]], dim=1).values for info in (info0, info1)]
    assert torch.equal(kept[0], kept[1])
