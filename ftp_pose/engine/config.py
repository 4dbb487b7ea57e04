"""Training configuration: one dataclass tree, loaded from YAML plus ``--set key=value`` overrides.

A config file (``configs/*.yaml``) has up to four sections, each a dataclass below::

    model: {name, backbone, eps_h, eps_l, overrides: {embed_dim, depth, ...}, pretrained}
    data:  {train_ann, train_images, val_ann, ..., offsets, aug: {flip, ...}, synthetic: {..., options: {...}}}
    optim: {epochs, lr, lr_steps, lr_factor, warmup_iters, weight_decay, betas, layer_decay, ...}
    (top level) batch_size, workers, amp, compile, seed, eval_every, flip_test, out_dir, ...

Every section, nested ones included, is a dataclass: the whole file is checked when it is loaded.
Overrides use dotted keys (``--set optim.lr=1e-3 --set model.overrides.depth=2``); each value is
parsed as YAML and then checked against the field's type hint. An unknown key or a value of the
wrong type raises :class:`ConfigError` naming the file, the dotted key, the expected type and the
value; so does ``data.offsets`` unless the key frame is the clip's middle frame. Relative paths in the file
are kept as written and resolved against the current directory when used (the repository root
for every command in the README).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ftp_pose.clip import ClipLayout
from ftp_pose.data.posetrack import AugmentConfig
from ftp_pose.errors import ConfigError, MissingFileError  # noqa: F401 - ConfigError is re-exported here


@dataclass
class ModelOverrides:
    """Changes to the backbone preset (``ftp_pose.models.BACKBONES``); None keeps the preset's value.

    Each field is the :class:`ftp_pose.models.FTPPoseConfig` field of the same name. The input
    size is ``data.input_size`` and the frame count comes from ``data.offsets``, not from here.
    """

    #: to_dict leaves out the fields that are None
    SPARSE: ClassVar[bool] = True

    embed_dim: int | None = None
    num_heads: int | None = None
    depth: int | None = None
    lrb_depth: int | None = None
    refine_depth: int | None = None
    mlp_ratio: float | None = None
    fusion_mlp_ratio: float | None = None
    k: int | None = None
    tau: float | None = None
    dpc_normalize: bool | None = None
    dpc_chunk_size: int | None = None
    patch_size: int | None = None
    upsample_factor: int | None = None
    upsample_mode: str | None = None
    drop_path_rate: float | None = None

    def kwargs(self) -> dict[str, Any]:
        """The fields that are set, as ``build_model`` keyword arguments."""
        return _set_fields(self)


@dataclass
class ModelConfig:
    """Which network to build (see :func:`ftp_pose.models.build_model`)."""

    #: "baseline" (backbone + LRB, no pruning), "multigrained" (+HRB and fusion), "ftp_pose" (+pruning)
    name: str = "ftp_pose"
    #: backbone preset (ftp_pose.models.BACKBONES): "base" (paper), "small", "tiny", "large" or "quick" (CPU)
    backbone: str = "base"
    #: pruning ratios of the high- / low-resolution branch (None = the model's default; 1 = keep all)
    eps_h: float | None = None
    eps_l: float | None = None
    #: changes to the backbone preset (e.g. depth, embed_dim, num_heads)
    overrides: ModelOverrides = field(default_factory=ModelOverrides)
    #: backbone weights: a checkpoint path, or None to start from random weights
    pretrained: str | None = None


@dataclass
class SyntheticOptions:
    """More arguments of ``ftp_pose.data.synthetic.generate_synthetic_posetrack``; None keeps its default."""

    SPARSE: ClassVar[bool] = True

    n_val_videos: int | None = None
    difficulty: str | None = None
    people_per_frame: tuple[int, int] | None = None
    #: frame (W, H) in pixels
    size: tuple[int, int] | None = None
    jpeg_quality: int | None = None
    draw_people: bool | None = None
    # the ablation-benchmark options (ftp_pose.data.synthetic.ABLATION_BENCHMARK)
    #: person height range as fractions of the frame height
    height: tuple[float, float] | None = None
    #: "colour" (left/right limbs coloured) or "view" (side from geometry only)
    side_cue: str | None = None
    #: probability that a limb joint is hidden in one frame
    key_occlusion: float | None = None
    #: probability that a frame is motion-blurred
    key_blur: float | None = None
    #: limb-like clutter sticks per video
    distractors: int | None = None
    #: per-person, per-frame probability of a one-frame patch over a limb joint (label kept)
    person_occlusion: float | None = None
    #: hand / shoe size factor (own colours when > 1)
    limb_ends: float | None = None

    def kwargs(self) -> dict[str, Any]:
        """The fields that are set, as keyword arguments."""
        return _set_fields(self)


@dataclass
class SyntheticConfig:
    """Synthetic PoseTrack-format videos, generated into ``out_dir`` when its annotations are missing."""

    out_dir: str = "data/synth_quick"
    n_videos: int = 24
    n_frames: int = 8
    seed: int = 0
    options: SyntheticOptions = field(default_factory=SyntheticOptions)


@dataclass
class DataConfig:
    """Where the clips come from and how they are cropped (see ``ftp_pose.data``)."""

    train_ann: str = "data/posetrack17/annotations/train"
    train_images: str = "data/posetrack17"
    val_ann: str = "data/posetrack17/annotations/val"
    val_images: str = "data/posetrack17"
    #: person boxes for training and validation: "gt" or a COCO-results detection json
    train_boxes: str = "gt"
    val_boxes: str = "gt"
    input_size: tuple[int, int] = (256, 192)
    heatmap_size: tuple[int, int] = (64, 48)
    sigma: float = 2.0
    #: frame offsets of the neighbours around the key frame (balanced: the model reads the key in the middle)
    offsets: tuple[int, ...] = (-1, 1)
    box_enlarge: float = 1.25
    det_score_thresh: float = 0.2
    #: training augmentation on/off, and its settings
    augment: bool = True
    aug: AugmentConfig = field(default_factory=AugmentConfig)
    #: use only the first n items of a split (None = all; handy for smoke runs)
    max_train_items: int | None = None
    max_val_items: int | None = None
    #: when set, synthetic videos are generated into synthetic.out_dir if missing
    synthetic: SyntheticConfig | None = None


@dataclass
class OptimConfig:
    """AdamW with linear warm-up and step decay (paper: 20 epochs, x0.1 at epoch 16; ViTPose recipe)."""

    epochs: int = 20
    lr: float = 5e-4
    #: epochs (0-based) at whose start the learning rate is multiplied by lr_factor
    lr_steps: tuple[int, ...] = (16,)
    lr_factor: float = 0.1
    #: linear warm-up over this many iterations, from lr * warmup_ratio to lr
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    #: ViTPose layer-wise learning-rate decay of the backbone blocks (1.0 = off)
    layer_decay: float = 0.75
    #: gradient clipping by global norm (0 or None = off)
    grad_clip: float | None = 1.0
    #: weight the loss per joint with ftp_pose.keypoints.JOINT_LOSS_WEIGHTS (DCPose)
    joint_weights: bool = True


@dataclass
class TrainConfig:
    """Everything one training run needs; ``python -m ftp_pose train --config FILE --set k=v``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    #: clips per process and step (global batch = batch_size x number of processes)
    batch_size: int = 32
    val_batch_size: int | None = None
    workers: int = 4
    #: mixed precision on CUDA: "auto" (bf16 if supported, else fp16), "bf16", "fp16" or "off"
    amp: str = "auto"
    compile: bool = False
    #: "auto" (cuda if available), "cpu" or "cuda"
    device: str = "auto"
    seed: int = 0
    #: validate every n epochs (and always after the last one); 0 = never
    eval_every: int = 1
    #: stop early once this many validations in a row did not raise the mean AP by plateau_min_delta
    #: over the best so far (0 = off: run every epoch)
    plateau_patience: int = 0
    plateau_min_delta: float = 0.5
    #: ... but never before this many epochs (e.g. the last lr step plus a few validations)
    plateau_min_epochs: int = 0
    flip_test: bool = True
    #: log one metrics.csv row every n iterations
    log_every: int = 10
    #: also write last.pt every n iterations inside an epoch (0 = only at epoch ends)
    checkpoint_every_iters: int = 0
    #: run folder (metrics.csv, curves.png, last.pt, best.pt, val_ap.*)
    out_dir: str = "runs/ftp_pose"
    #: where this config was read from (filled in by load_config; for messages only)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists), safe for yaml/json and ``torch.load(weights_only=True)``."""
        return _plain(self)


def _set_fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if getattr(obj, f.name) is not None}


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = _set_fields(obj) if getattr(obj, "SPARSE", False) else \
            {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return {k: _plain(v) for k, v in items.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- type checking

def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against the type ``hint`` and convert it (list -> tuple, int -> float, dict -> dataclass)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)

    def fail(why: str) -> ConfigError:
        return ConfigError(f"{source}: key '{key}': {why} (expected {_type_name(hint)}, got {value!r})")

    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        alternatives = [a for a in args if a is not type(None)]
        if len(alternatives) == 1:  # X | None: X's own, precise message (e.g. a nested section's bad key)
            return _coerce(value, alternatives[0], key, source)
        for a in alternatives:
            try:
                return _coerce(value, a, key, source)
            except ConfigError:
                pass
        raise fail("no matching type")
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise fail("expected a mapping")
        return _build(hint, value, key, source)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise fail("expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
        if len(value) != len(args):
            raise fail(f"expected {len(args)} values")
        return tuple(_coerce(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if not isinstance(value, bool):
            raise fail("expected true/false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("expected an integer")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise fail("expected a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("expected a number")
        return float(value)
    if hint is str:
        if isinstance(value, bool):  # YAML 1.1 reads a bare off/on/no/yes as a boolean
            return "on" if value else "off"
        if not isinstance(value, str):
            raise fail("expected a string")
        return value
    raise fail(f"unsupported field type {hint}")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _fields(cls: type) -> set[str]:
    """The keys a config file may give for dataclass ``cls`` (``TrainConfig.source`` is filled in, not read)."""
    return {f.name for f in dataclasses.fields(cls)} - {"source"}


def _build(cls: type, values: dict[str, Any], prefix: str, source: str) -> Any:
    """Instantiate dataclass ``cls`` from a (partial) mapping, checking every key and type."""
    hints = typing.get_type_hints(cls)
    names = _fields(cls)
    kwargs = {}
    for k, v in values.items():
        full = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            raise ConfigError(f"{source}: unknown key '{full}' (known keys here: {', '.join(sorted(names))})")
        kwargs[k] = _coerce(v, hints[k], full, source)
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any], source: str = "<dict>") -> TrainConfig:
    """Build a :class:`TrainConfig` from a nested mapping (missing keys take the defaults)."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: a config must be a mapping at the top level, got {type(values).__name__}")
    values = dict(values)
    values.pop("source", None)
    cfg = _build(TrainConfig, values, "", source)
    cfg.source = source
    clip_layout(cfg)  # checked now, not when the first batch runs
    return cfg


def clip_layout(cfg: TrainConfig) -> ClipLayout:
    """The clip's frames from ``data.offsets``; ConfigError unless the key frame is the middle one."""
    try:
        return ClipLayout(cfg.data.offsets).check_middle_key(f"{cfg.source}: data.offsets")
    except ValueError as e:
        msg = str(e) if "data.offsets" in str(e) else f"{cfg.source}: data.offsets: {e}"
        raise ConfigError(msg) from None


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=1e-3"`` -> ``("optim.lr", 0.001)`` (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {e}") from e
    return key, value


def apply_overrides(values: dict[str, Any], overrides: list[str] | dict[str, Any], source: str) -> dict[str, Any]:
    """Return a copy of the nested mapping ``values`` with dotted-key overrides applied.

    Keys are checked against the dataclass tree, so a typo fails here with the key's name.
    """
    import copy

    out = copy.deepcopy(values) if values else {}
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    for key, value in items:
        parts = key.split(".")
        cls: Any = TrainConfig
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part not in _fields(cls):
                raise ConfigError(f"{source}: unknown key '{'.'.join(parts[:i + 1])}' in --set {key}")
            hint = typing.get_type_hints(cls)[part]
            inner = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
            cls = hint if dataclasses.is_dataclass(hint) else (inner[0] if inner else None)
            if not last and cls is None:
                raise ConfigError(f"{source}: key '{'.'.join(parts[:i + 1])}' has no sub-keys (--set {key})")
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config (or start from the defaults when ``path`` is None) and apply overrides."""
    values: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise MissingFileError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a config must be a mapping at the top level")
    if overrides:
        values = apply_overrides(values, overrides, source)
    return config_from_dict(values, source)


def save_config(cfg: TrainConfig, path: str | Path) -> Path:
    """Write ``cfg`` as YAML (atomically), e.g. ``run_dir/config.yaml``."""
    from ftp_pose.io import write_text

    return write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
