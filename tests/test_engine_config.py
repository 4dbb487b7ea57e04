"""Config loading: YAML files, --set overrides typed by the dataclasses, clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from ftp_pose.engine.config import ConfigError, TrainConfig, config_from_dict, load_config
from ftp_pose.paths import REPO_ROOT

QUICK_CONFIG = REPO_ROOT / "configs" / "quick_cpu.yaml"
CONFIGS = sorted((REPO_ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_file_loads(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig) and cfg.source == str(path)
    assert config_from_dict(cfg.to_dict()) == config_from_dict(cfg.to_dict())  # round trip is stable


def test_paper_configs_follow_the_paper_schedule() -> None:
    names = {}
    for stem in ("baseline", "multigrained", "ftp_pose"):
        cfg = load_config(REPO_ROOT / "configs" / f"{stem}.yaml")
        assert (cfg.optim.epochs, cfg.optim.lr_steps, cfg.optim.lr_factor) == (20, (16,), 0.1)
        assert cfg.data.input_size == (256, 192) and cfg.model.backbone == "base"
        names[stem] = cfg.model.name
    assert names == {"baseline": "baseline", "multigrained": "multigrained", "ftp_pose": "ftp_pose"}


def test_overrides_are_typed(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 1e-3\nmodel:\n  name: baseline\n")
    cfg = load_config(f, ["optim.lr_steps=[3, 5]", "model.eps_h=6", "amp=off", "model.overrides.depth=2",
                          "data.input_size=[128, 96]", "batch_size=8"])
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.optim.lr_steps == (3, 5) and cfg.model.eps_h == 6.0 and cfg.amp == "off"
    assert cfg.model.overrides == {"depth": 2} and cfg.data.input_size == (128, 96) and cfg.batch_size == 8
    assert cfg.model.name == "baseline"


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("optim:\n  lr: 1e-3\n  lr_stepz: [3]\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*optim\.lr_stepz"):
        load_config(f)


@pytest.mark.parametrize("override,pattern", [
    ("optim.lrr=1", r"unknown key 'optim\.lrr'"),
    ("bogus=1", r"unknown key 'bogus'"),
    ("batch_size=1.5", r"'batch_size'.*integer"),
    ("optim.lr=fast", r"'optim\.lr'.*number"),
    ("data.input_size=[1, 2, 3]", r"'data\.input_size'"),
    ("model.name.x=1", r"'model\.name' has no sub-keys"),
    ("noequals", r"key=value"),
])
def test_bad_override_is_named(override: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override])


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("offsets", ["[-2, -1]", "[1, 2]", "[1]", "[-1, 0, 1]", "[1, 1]"])
def test_offsets_must_put_the_key_frame_in_the_middle(offsets: str) -> None:
    with pytest.raises(ConfigError, match=r"quick_cpu\.yaml: data\.offsets"):
        load_config(QUICK_CONFIG, [f"data.offsets={offsets}"])


def test_offsets_set_the_models_frames() -> None:
    from ftp_pose.clip import ClipLayout
    from ftp_pose.engine.builders import build_model_from_config

    cfg = load_config(QUICK_CONFIG, ["data.offsets=[-2, -1, 1, 2]"])
    assert ClipLayout(cfg.data.offsets).frames == (-2, -1, 0, 1, 2)
    assert build_model_from_config(cfg).config.num_frames == 5
    assert load_config(QUICK_CONFIG, ["data.offsets=[-1]"]).data.offsets == (-1,)  # T = 2, key at T // 2 = 1


def test_train_cli_rejects_offsets_before_training(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "ftp_pose", "train", "--config", str(QUICK_CONFIG),
                           "--set", "data.offsets=[-2,-1]", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode != 0 and "data.offsets" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
