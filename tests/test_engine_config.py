"""Config loading: YAML files, --set overrides typed by the dataclasses, clear errors."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from ftp_pose.engine.config import ConfigError, TrainConfig, config_from_dict, load_config
from ftp_pose.paths import REPO_ROOT

QUICK_CONFIG = REPO_ROOT / "configs" / "quick_cpu.yaml"
CONFIGS = sorted((REPO_ROOT / "configs").glob("*.yaml"))


def _assert_matches_file(obj, raw: dict, where: str) -> list[str]:
    """Every field of the dataclass ``obj`` equals the YAML mapping's value, or the field's declared
    default where the mapping is silent; returns the dotted keys that came from the file."""
    assert isinstance(raw, dict), f"{where}: expected a mapping in the file, got {raw!r}"
    names = {f.name for f in dataclasses.fields(obj)}
    assert set(raw) <= names, f"{where}: keys {sorted(set(raw) - names)} of the file are not config fields"
    seen = []
    for f in dataclasses.fields(obj):
        if f.name == "source":
            continue
        key, value = f"{where}{f.name}", getattr(obj, f.name)
        if f.name not in raw:
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            assert value == default, f"{key}: {value!r}, but the file is silent and the default is {default!r}"
        elif dataclasses.is_dataclass(value):
            seen += _assert_matches_file(value, raw[f.name], f"{key}.")
        else:
            expected = raw[f.name]
            got = list(value) if isinstance(value, tuple) else value
            assert got == expected and (expected is None) == (value is None), f"{key}: {value!r}, the file says {expected!r}"
            if isinstance(expected, float) or isinstance(value, float):
                assert isinstance(value, float), f"{key}: {value!r} should be a float"
            seen.append(key)
    return seen


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_file_loads_with_the_files_values(path: Path) -> None:
    """The typed config holds what the YAML file says (read independently with yaml.safe_load)."""
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig) and cfg.source == str(path)
    raw = yaml.safe_load(path.read_text())
    seen = _assert_matches_file(cfg, raw, "")
    assert len(seen) >= 20, seen  # the shipped configs spell out most of their settings


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
    assert cfg.model.overrides.kwargs() == {"depth": 2} and cfg.data.input_size == (128, 96) and cfg.batch_size == 8
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


@pytest.mark.parametrize("section,key", [
    ("model:\n  overrides:\n    widht: 3\n", "model.overrides.widht"),
    ("data:\n  aug:\n    flipp: false\n", "data.aug.flipp"),
    ("data:\n  synthetic:\n    options:\n      colour: red\n", "data.synthetic.options.colour"),
])
def test_unknown_key_in_a_nested_section_fails_when_loaded(tmp_path: Path, section: str, key: str) -> None:
    f = tmp_path / "nested.yaml"
    f.write_text(section)
    with pytest.raises(ConfigError, match=rf"nested\.yaml: unknown key '{key}'"):
        load_config(f)


@pytest.mark.parametrize("section,key,expected,got", [
    ("data:\n  aug:\n    flip: 3\n", "data.aug.flip", "bool", "3"),
    ("model:\n  overrides:\n    depth: two\n", "model.overrides.depth", "int", "'two'"),
    ("data:\n  synthetic:\n    options:\n      people_per_frame: [1, 2, 3]\n",
     "data.synthetic.options.people_per_frame", "tuple", r"\[1, 2, 3\]"),
])
def test_wrong_type_in_a_nested_section_names_key_expected_and_got(tmp_path: Path, section: str, key: str,
                                                                    expected: str, got: str) -> None:
    f = tmp_path / "typed.yaml"
    f.write_text(section)
    with pytest.raises(ConfigError, match=rf"typed\.yaml: key '{key}'.*expected.*{expected}.*got {got}"):
        load_config(f)


def test_model_overrides_are_network_fields() -> None:
    import dataclasses
    import typing

    from ftp_pose.engine.config import ModelOverrides
    from ftp_pose.models import FTPPoseConfig

    net = typing.get_type_hints(FTPPoseConfig)
    for name, hint in typing.get_type_hints(ModelOverrides).items():
        if name == "SPARSE":
            continue
        assert name in net, f"ModelOverrides.{name} is not an FTPPoseConfig field"
        assert set(typing.get_args(hint)) - {type(None)} <= {net[name], *typing.get_args(net[name])}, name
    assert {f.name for f in dataclasses.fields(ModelOverrides)}.isdisjoint({"img_size", "num_frames", "variant"})


def test_to_dict_round_trips_and_leaves_unset_overrides_out() -> None:
    cfg = load_config(QUICK_CONFIG, ["model.overrides.depth=3"])
    d = cfg.to_dict()
    assert d["model"]["overrides"] == {"depth": 3} and d["data"]["aug"]["flip"] is False
    again = config_from_dict(d, cfg.source)
    assert again == cfg


def test_quick_preset_is_the_model_of_the_stored_quick_config() -> None:
    """configs/quick_cpu.yaml says ``backbone: quick``; checkpoints made before the preset existed store
    ``backbone: tiny`` with overrides: both build the same network, so the shipped checkpoint loads."""
    import dataclasses

    from ftp_pose.engine.builders import build_model_from_config, model_config
    from ftp_pose.models import BACKBONES, QUICK_BACKBONE

    cfg = load_config(QUICK_CONFIG)
    assert cfg.model.backbone == QUICK_BACKBONE and cfg.model.overrides.kwargs() == {}
    net = model_config(cfg)
    assert (net.embed_dim, net.num_heads, net.depth, net.lrb_depth, net.refine_depth) == (96, 4, 2, 1, 1)
    assert BACKBONES[QUICK_BACKBONE] == dict(embed_dim=96, num_heads=4, depth=2, lrb_depth=1, refine_depth=1)

    stored = cfg.to_dict()
    stored["model"] = {"name": "ftp_pose", "backbone": "tiny", "eps_h": 6, "eps_l": 6, "pretrained": None,
                       "overrides": {"embed_dim": 96, "num_heads": 4, "depth": 2, "lrb_depth": 1, "refine_depth": 1}}
    stored["data"]["aug"] = {"flip": False, "rotation_factor": 30.0, "half_body_prob": 0.0}  # old: a partial dict
    old = config_from_dict(stored, "old checkpoint")
    assert dataclasses.replace(model_config(old), backbone="") == dataclasses.replace(net, backbone="")
    assert old.data == cfg.data
    a, b = build_model_from_config(old).state_dict(), build_model_from_config(cfg).state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}


def test_synthetic_options_cover_every_generator_argument() -> None:
    # the typed section must accept whatever the generator takes (a new generator option that the
    # config does not know would only fail when a config uses it)
    import dataclasses
    import inspect

    from ftp_pose.data.synthetic import generate_synthetic_posetrack
    from ftp_pose.engine.config import SyntheticConfig, SyntheticOptions

    generator = set(inspect.signature(generate_synthetic_posetrack).parameters) - {"progress"}
    typed = {f.name for f in dataclasses.fields(SyntheticOptions)} | {f.name for f in dataclasses.fields(SyntheticConfig)}
    assert generator <= typed, f"not in the config's synthetic sections: {sorted(generator - typed)}"
