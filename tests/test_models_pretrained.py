"""Loading ViT weights from self-made timm / MAE / ViTPose checkpoints."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from ftp_pose.models import build_model, load_pretrained

SMALL = dict(backbone="tiny", depth=2, lrb_depth=1, refine_depth=1)


@pytest.fixture(scope="module")
def source_vit() -> dict[str, torch.Tensor]:
    """A 4-block, width-192 timm ViT at 224 x 224 (14 x 14 grid + class token), random weights."""
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=224, patch_size=16, embed_dim=192, depth=4, num_heads=3, num_classes=5)
    return {k: v.clone() for k, v in vit.state_dict().items()}


def _check_blocks(model, sd) -> None:
    b = model.backbone.state_dict()
    torch.testing.assert_close(b["blocks.0.attn.qkv.weight"], sd["blocks.0.attn.qkv.weight"])
    torch.testing.assert_close(b["blocks.1.mlp.fc2.bias"], sd["blocks.1.mlp.fc2.bias"])
    torch.testing.assert_close(b["patch_embed.proj.weight"], sd["patch_embed.proj.weight"])
    torch.testing.assert_close(b["norm.weight"], sd["norm.weight"])
    # source blocks 2 and 3 -> the LRB block and the shared refinement block
    torch.testing.assert_close(model.mgfe.lrb.blocks[0].attn.proj.weight, sd["blocks.2.attn.proj.weight"])
    torch.testing.assert_close(model.mgfe.refine[0].mlp.fc1.weight, sd["blocks.3.mlp.fc1.weight"])


def test_timm_checkpoint(tmp_path: Path, source_vit) -> None:
    path = tmp_path / "timm.pth"
    torch.save(source_vit, path)
    model = build_model("ftp_pose", **SMALL)
    report = load_pretrained(model, path)
    assert report.format == "timm" and report.missing == [] and report.mismatched == []
    assert {"cls_token", "head.weight", "head.bias"} <= set(report.unexpected)
    _check_blocks(model, source_vit)
    assert model.backbone.pos_embed.shape == (1, 192, 192)  # 14 x 14 (+cls) resized to 16 x 12
    assert not torch.equal(model.backbone.pos_embed[0, :5], source_vit["pos_embed"][0, 1:6])


def test_mae_checkpoint_via_build_model(tmp_path: Path, source_vit) -> None:
    sd = dict(source_vit, mask_token=torch.zeros(1, 1, 192), **{"decoder_embed.weight": torch.zeros(4, 192)})
    path = tmp_path / "mae.pth"
    torch.save({"model": sd, "epoch": 3}, path)
    model = build_model("baseline", pretrained=str(path), **SMALL)
    report = model.pretrained_report
    assert report.format == "mae" and report.missing == []
    assert {"mask_token", "decoder_embed.weight"} <= set(report.unexpected)
    _check_blocks(model, source_vit)


def test_vitpose_checkpoint(tmp_path: Path, source_vit) -> None:
    sd = {}
    for k, v in source_vit.items():
        if k.startswith("head.") or k == "cls_token":
            continue
        k = "last_norm." + k[len("norm."):] if k.startswith("norm.") else k
        sd["backbone." + k] = v
    pos = torch.randn(1, 193, 192)  # ViTPose at 256 x 192: 16 x 12 patches + a class slot
    sd["backbone.pos_embed"] = pos
    sd["keypoint_head.final_layer.weight"] = torch.zeros(17, 256, 1, 1)
    del sd["backbone.blocks.1.attn.qkv.bias"]
    path = tmp_path / "vitpose.pth"
    torch.save({"meta": {}, "state_dict": sd}, path)
    model = build_model("ftp_pose", **SMALL)
    report = load_pretrained(model, path)
    assert report.format == "vitpose"
    assert report.missing == ["backbone.blocks.1.attn.qkv.bias"]
    assert report.unexpected == ["keypoint_head.final_layer.weight"]
    torch.testing.assert_close(model.backbone.pos_embed, pos[:, 1:] + pos[:, :1])
    torch.testing.assert_close(model.backbone.norm.bias, source_vit["norm.bias"])
    torch.testing.assert_close(model.mgfe.refine[0].mlp.fc1.weight, source_vit["blocks.3.mlp.fc1.weight"])


def test_shape_mismatch_and_missing_file(tmp_path: Path, source_vit) -> None:
    path = tmp_path / "timm.pth"
    torch.save(source_vit, path)
    model = build_model("ftp_pose", backbone="small", depth=1, lrb_depth=1, refine_depth=1)  # width 384
    report = load_pretrained(model, path)
    assert report.mismatched and not report.loaded
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        load_pretrained(model, tmp_path / "nothere.pth")
