"""One place where the notebooks read their sizes: quick CPU mode, full mode, and tiny full mode.

* ``FTP_POSE_QUICK=1`` (what ``pytest --nbval`` runs): CPU, small sizes, the cached quick
  checkpoint (``ftp_pose.engine.quick_checkpoint``), short runs.
* otherwise **full** mode: the paper's sizes (base backbone, 256 x 192 crops, 20 epochs) on a GPU
  when there is one.
* ``FTP_POSE_QUICK=0 FTP_POSE_TINY=1``: the full-mode code path with tiny sizes, so that a CPU
  test exercises exactly what a GPU run executes.

Notebooks call :func:`settings` once (directly or through :func:`setup`, their first cell) and pass its
fields on; no notebook reads the variables itself. Also here: the models and samples they show, the data
overrides of notebook 03's full-mode run, the joint errors of a checkpoint on its validation people,
and :func:`show_jpeg` for photo-like figures.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ftp_pose.errors import MissingFileError
from ftp_pose.paths import quick_mode


@dataclass(frozen=True)
class NotebookSettings:
    """Sizes and switches for one notebook run."""

    #: "quick", "full" or "tiny" (full code path, tiny sizes)
    mode: str
    #: "cuda" when available in full mode, else "cpu"
    device: str
    #: backbone size passed to build_model ("tiny", "small", "base")
    backbone: str
    #: extra build_model keyword arguments (small widths/depths in quick and tiny mode)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    #: training config file for notebook 03, and the --set overrides applied on top of it
    train_config: str = "configs/ftp_pose.yaml"
    train_overrides: tuple[str, ...] = ()
    #: synthetic set used when no PoseTrack folder is given (videos, frames per video)
    synth_videos: int = 64
    synth_frames: int = 12
    #: how many frames/clips the demo and figures use
    n_examples: int = 3
    #: repeats for timings
    repeats: int = 5
    seed: int = 0

    @property
    def quick(self) -> bool:
        return self.mode == "quick"


def settings() -> NotebookSettings:
    """Read ``FTP_POSE_QUICK`` / ``FTP_POSE_TINY`` and return the notebook sizes."""
    from ftp_pose.models.variants import QUICK_BACKBONE

    if quick_mode():
        return NotebookSettings(
            mode="quick", device="cpu", backbone=QUICK_BACKBONE,  # the model of configs/quick_cpu.yaml
            train_config="configs/quick_cpu.yaml", synth_videos=32, synth_frames=10,
            n_examples=2, repeats=2,
        )
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if os.environ.get("FTP_POSE_TINY", "0") not in ("", "0"):
        return NotebookSettings(
            mode="tiny", device=device, backbone="tiny",
            model_overrides=dict(embed_dim=64, num_heads=2, depth=1, lrb_depth=1, refine_depth=1),
            train_config="configs/ftp_pose.yaml",
            train_overrides=("optim.epochs=1", "batch_size=2", "workers=0", "model.backbone=tiny",
                             "model.overrides={embed_dim: 64, num_heads: 2, depth: 1, lrb_depth: 1, refine_depth: 1}",
                             "data.max_train_items=4", "data.max_val_items=4", "optim.warmup_iters=1"),
            synth_videos=2, synth_frames=4, n_examples=1, repeats=1,
        )
    return NotebookSettings(mode="full", device=device, backbone="base", train_config="configs/ftp_pose.yaml")


# ----------------------------------------------------------------------------- models and samples

@dataclass
class NotebookModel:
    """A model for the notebooks and where its weights came from."""

    model: Any
    #: "trained checkpoint", "pretrained backbone", "quick checkpoint" or "random"
    kind: str
    #: one line naming the file (or saying that the weights are random)
    source: str
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    #: the checkpoint file (None for "pretrained backbone" and "random")
    path: Any = None

    def describe(self) -> str:
        c = self.model.config
        return (f"weights: {self.kind} ({self.source}); {c.variant}, backbone {c.backbone} width {c.embed_dim}, "
                f"input {self.input_size[0]} x {self.input_size[1]}, heatmaps {self.heatmap_size[0]} x "
                f"{self.heatmap_size[1]}, eps_h={c.eps_h:g}, eps_l={c.eps_l:g}, k={c.k}")


def full_run_dir(s: NotebookSettings) -> "Path":
    """Run folder of notebook 03's training in full / tiny mode (``runs/notebook_<mode>``)."""
    from pathlib import Path

    from ftp_pose.paths import REPO_ROOT

    return Path(REPO_ROOT) / "runs" / f"notebook_{s.mode}"


def _rel(path: Any) -> str:
    from pathlib import Path

    from ftp_pose.paths import REPO_ROOT

    p = Path(path).resolve()
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def load_model(s: NotebookSettings, prefer: str = "trained") -> NotebookModel:
    """The model the notebooks show, in eval mode on ``s.device``; the first of:

    1. ``$FTP_POSE_CHECKPOINT``: a checkpoint written by ``ftp_pose train``;
    2. ``prefer="trained"`` only: notebook 03's full-mode run (``runs/notebook_<mode>/best.pt``) once
       it has finished (a killed run's ``best.pt`` is not used);
    3. ``$FTP_POSE_PRETRAINED``: ViT weights (timm / MAE / ViTPose file) for the backbone of a
       fresh ``s.backbone`` model (MGFE, fusion and head stay random);
    4. the quick CPU checkpoint (:func:`ftp_pose.engine.quick_checkpoint`: the shipped
       ``checkpoints/quick_cpu.pt``; trained only when that is missing, in quick mode only);
    5. random weights (seeded), ``s.backbone`` with ``s.model_overrides``.
    """
    from pathlib import Path

    import torch

    from ftp_pose.engine.checkpoint import model_from_checkpoint

    def from_ckpt(path: Any, kind: str) -> NotebookModel:
        model, cfg = model_from_checkpoint(path, s.device)
        return NotebookModel(model, kind, _rel(path), tuple(cfg.data.input_size), tuple(cfg.data.heatmap_size),
                             Path(path).resolve())

    env_ckpt = os.environ.get("FTP_POSE_CHECKPOINT")
    if env_ckpt:
        return from_ckpt(env_ckpt, "trained checkpoint")
    from ftp_pose.engine.checkpoint import completed_checkpoint

    finished = completed_checkpoint(full_run_dir(s)) if prefer == "trained" and not s.quick else None
    if finished is not None:  # only a run that finished every epoch
        return from_ckpt(finished, "trained checkpoint")
    pretrained = os.environ.get("FTP_POSE_PRETRAINED")
    if pretrained:
        from ftp_pose.models import build_model

        torch.manual_seed(s.seed)
        model = build_model("ftp_pose", backbone=s.backbone, pretrained=pretrained, **s.model_overrides)
        c = model.config
        return NotebookModel(model.to(s.device).eval(), "pretrained backbone", _rel(pretrained),
                             tuple(c.input_size), tuple(c.heatmap_size))
    from ftp_pose.engine import quick_checkpoint

    try:
        return from_ckpt(quick_checkpoint(train_if_missing=s.quick), "quick checkpoint")
    except FileNotFoundError:
        pass
    from ftp_pose.models import build_model

    torch.manual_seed(s.seed)
    model = build_model("ftp_pose", backbone=s.backbone, **s.model_overrides)
    c = model.config
    return NotebookModel(model.to(s.device).eval(), "random", f"seed {s.seed}, nothing trained or pretrained found",
                         tuple(c.input_size), tuple(c.heatmap_size))


def real_people(input_size: tuple[int, int], heatmap_size: tuple[int, int]) -> Any:
    """The people of the real PoseTrack18 val sample (``data_root()/posetrack18``) as 3-frame clips.

    Only the key frames are in the sample, so the neighbours repeat the key frame (the
    boundary rule of the loader). Ground-truth boxes, no augmentation.
    """
    from ftp_pose.data import PoseTrackClipDataset
    from ftp_pose.paths import posetrack18_sample

    root = posetrack18_sample()
    return PoseTrackClipDataset(root / "annotations" / "test_posetrack18_val.json", root, train=False,
                                input_size=input_size, heatmap_size=heatmap_size)


def synthetic_people(input_size: tuple[int, int], heatmap_size: tuple[int, int]) -> Any:
    """Validation people of the small synthetic demo set (``data/synth_demo``, rendered when missing)."""
    from ftp_pose.data import PoseTrackClipDataset
    from ftp_pose.viz.show import ensure_synth_demo

    root = ensure_synth_demo()
    return PoseTrackClipDataset(root / "annotations" / "val.json", root, train=False,
                                input_size=input_size, heatmap_size=heatmap_size)


#: people of the unlabeled PoseTrack18 test video ``posetrack18/videos/000001_mpiinew_test`` (10 frames,
#: 1280 x 720), boxes ``x, y, w, h`` drawn by hand around frame 4 (there are no labels to take them from)
VIDEO_DIR = "posetrack18/videos/000001_mpiinew_test"
VIDEO_PEOPLE: dict[str, tuple[float, float, float, float]] = {
    "white shirt": (355.0, 280.0, 175.0, 315.0),
    "blue shirt": (585.0, 280.0, 215.0, 255.0),
}


def real_video_clips(input_size: tuple[int, int], key_frame: int = 4,
                     boxes: dict[str, tuple[float, float, float, float]] | None = None) -> dict[str, dict[str, Any]]:
    """Real 3-frame clips (frames ``key_frame - 1, key_frame, key_frame + 1``) of the sample video.

    The same box (enlarged 1.25, aspect of ``input_size``) is cropped from the three consecutive
    frames, as the loader does (docs/method.md, Pipeline step 1). Returns ``{name: {"clip": T x 3 x H x W
    ImageNet-normalised float32, "meta": {"box", "affine", "frames", "vid_id"}}}`` for each box of
    ``boxes`` (default :data:`VIDEO_PEOPLE`).
    """
    import numpy as np

    from ftp_pose.data.clips import box_affine, crop_clip, read_rgb
    from ftp_pose.paths import data_root

    folder = data_root() / VIDEO_DIR
    names = [folder / f"{i:06d}.jpg" for i in (key_frame - 1, key_frame, key_frame + 1)]
    missing = [str(p) for p in names if not p.is_file()]
    if missing:
        raise MissingFileError(f"real_video_clips: frame(s) not found: {missing} (key_frame={key_frame})")
    frames = [read_rgb(p) for p in names]
    out: dict[str, dict[str, Any]] = {}
    for name, box in (boxes or VIDEO_PEOPLE).items():
        m = box_affine(box, input_size)
        out[name] = {"clip": crop_clip(frames, m, input_size),
                     "meta": {"box": np.asarray(box, np.float32), "affine": m, "frames": [p.name for p in names],
                              "vid_id": folder.name}}
    return out


# ----------------------------------------------------------------------------- shapes from a config

def pipeline_shapes(cfg: Any, batch: int = 1) -> list[tuple[str, tuple[int, ...], int | None]]:
    """``(step, shape, tokens)`` of every FTP-Pose step, computed from an ``FTPPoseConfig`` alone.

    No forward pass: notebook 02 prints it for the paper's config beside the quick model's and
    checks the quick rows against the shapes its forward pass produced. ``tokens`` is None for
    the heatmaps (maps, not tokens).
    """
    from ftp_pose.models import num_kept

    t, c = cfg.num_frames, cfg.embed_dim
    n = cfg.grid_size[0] * cfg.grid_size[1]
    n_h = cfg.heatmap_size[0] * cfg.heatmap_size[1]
    m_l, m_h = num_kept(t * n, cfg.eps_l), num_kept(n_h, cfg.eps_h)
    return [
        ("backbone tokens (B x T x N x C)", (batch, t, n, c), t * n),
        ("LRB output (B x T*N x C)", (batch, t * n, c), t * n),
        (f"LRB kept tokens (eps_l={cfg.eps_l:g})", (batch, m_l, c), m_l),
        ("HRB grid (B x 16N x C)", (batch, n_h, c), n_h),
        (f"HRB kept tokens (eps_h={cfg.eps_h:g})", (batch, m_h, c), m_h),
        ("F_l (refined LRB tokens)", (batch, m_l, c), m_l),
        ("F_h (refined HRB tokens)", (batch, m_h, c), m_h),
        ("fusion keys/values [F_h ; F_l]", (batch, m_h + m_l, c), m_h + m_l),
        ("fused grid", (batch, n_h, c), n_h),
        ("heatmaps (B x J x h x w)", (batch, cfg.num_joints, *cfg.heatmap_size), None),
    ]


# ----------------------------------------------------------------------------- what a checkpoint's run recorded

def run_record(checkpoint: Any) -> dict[str, Any]:
    """What notebook 03 reads about the run behind ``checkpoint`` (a run's ``best.pt`` or the
    shipped ``checkpoints/quick_cpu.pt``), without loading the model.

    Returns ``config`` (the resolved training config, a dict), ``metrics`` (the last validation:
    per-group AP, ``epoch``) and ``history``: the rows of the run's ``metrics.csv`` (``kind`` train
    or val), read from ``history`` in the checkpoint (``export_weights`` stores it) or from the run
    folder (``<dir>/metrics.csv``); None when there is none.
    """
    import csv
    from pathlib import Path

    from ftp_pose.engine.checkpoint import load_checkpoint

    path = Path(checkpoint)
    payload = load_checkpoint(path)
    history = payload.get("history")
    if history is None and (path.parent / "metrics.csv").is_file():
        with open(path.parent / "metrics.csv", newline="") as f:
            history = list(csv.DictReader(f))
    return {"config": payload.get("config"), "metrics": payload.get("metrics") or {}, "history": history}


# ----------------------------------------------------------------------------- first cell, training data

def setup() -> NotebookSettings:
    """What the first code cell of notebooks 01-03 does: no progress bars in stored outputs
    (``TQDM_DISABLE=1``), :func:`settings`, ``torch.manual_seed(seed)``; prints the mode in one line."""
    import torch

    os.environ["TQDM_DISABLE"] = "1"
    s = settings()
    torch.manual_seed(s.seed)
    print(f"mode: {s.mode}, device: {s.device}")
    return s


def train_data_overrides(s: NotebookSettings) -> tuple[list[str], str]:
    """``--set`` overrides that point notebook 03's full / tiny run at its data, and a one-line note.

    PoseTrack when ``$FTP_POSE_POSETRACK`` names a folder (``annotations/train``, ``annotations/val``
    and the images below it), else synthetic videos rendered into ``data/synth_full`` (full mode) or
    ``data/synth_notebook_<mode>``, ``s.synth_videos`` videos of ``s.synth_frames`` frames.
    """
    from ftp_pose.paths import REPO_ROOT

    posetrack = os.environ.get("FTP_POSE_POSETRACK")
    if posetrack:
        return [f"data.train_ann={posetrack}/annotations/train", f"data.train_images={posetrack}",
                f"data.val_ann={posetrack}/annotations/val", f"data.val_images={posetrack}"], f"PoseTrack ({posetrack})"
    synth = REPO_ROOT / "data" / ("synth_full" if s.mode == "full" else f"synth_notebook_{s.mode}")
    gen = (f"data.synthetic={{out_dir: '{synth}', n_videos: {s.synth_videos}, n_frames: {s.synth_frames}, "
           f"seed: {s.seed}, options: {{n_val_videos: {max(1, s.synth_videos // 8)}}}}}")
    return [f"data.train_ann={synth}/annotations/train.json", f"data.train_images={synth}",
            f"data.val_ann={synth}/annotations/val.json", f"data.val_images={synth}", gen], \
        f"synthetic videos ({synth.relative_to(REPO_ROOT)}; no $FTP_POSE_POSETRACK given)"


def validation_people(config: dict) -> Any:
    """The validation people of a training config (the resolved config dict a checkpoint stores), as
    the run validated them: ground-truth boxes, no augmentation. A synthetic set named by
    ``data.synthetic`` is rendered first when missing (seconds)."""
    import copy
    from pathlib import Path

    from ftp_pose.engine.builders import build_dataset, ensure_synthetic
    from ftp_pose.engine.config import config_from_dict
    from ftp_pose.paths import REPO_ROOT

    config = copy.deepcopy(config)
    d = config["data"]

    def anchor(p: Any) -> Any:  # relative paths of a stored config are relative to the repository root
        return p if p in (None, "gt") or Path(p).is_absolute() else str(REPO_ROOT / p)
    for key in ("train_ann", "train_images", "val_ann", "val_images", "train_boxes", "val_boxes"):
        if key in d:
            d[key] = anchor(d[key])
    if d.get("synthetic"):
        d["synthetic"]["out_dir"] = anchor(d["synthetic"]["out_dir"])
    cfg = config_from_dict(config, "checkpoint config")
    ensure_synthetic(cfg)
    return build_dataset(cfg, "val")


@dataclass
class JointPredictions:
    """Predicted and true joints of every person of a dataset, in input-crop pixels.

    ``pred`` P x J x 2 (heatmap argmax, DARK-refined), ``true`` P x J x 2, ``visible`` P x J (bool),
    ``threshold`` P: the PCKh@0.5 distance of each person (half of 0.6 x its head-box diagonal),
    in crop pixels.
    """

    pred: Any
    true: Any
    visible: Any
    threshold: Any

    def error(self) -> Any:
        """P x J distance between prediction and truth, in PCKh thresholds (NaN where not visible)."""
        import numpy as np

        e = np.linalg.norm(self.pred - self.true, axis=-1) / self.threshold[:, None]
        return np.where(self.visible, e, np.nan)

    def along(self, a: int, b: int, joint: int | None = None) -> Any:
        """Where the prediction of ``joint`` (default ``b``) falls along the true segment ``a -> b``:
        0 at the true ``a``, 1 at the true ``b`` (projection onto the line). P values, NaN where
        ``a`` or ``b`` is not visible."""
        import numpy as np

        j = b if joint is None else joint
        seg = self.true[:, b] - self.true[:, a]
        t = ((self.pred[:, j] - self.true[:, a]) * seg).sum(-1) / np.maximum((seg ** 2).sum(-1), 1e-9)
        return np.where(self.visible[:, a] & self.visible[:, b], t, np.nan)


def joint_predictions(model: Any, dataset: Any, device: str = "cpu", batch_size: int = 16) -> JointPredictions:
    """Run ``model`` (no flip test) on every person of a ground-truth-box ``PoseTrackClipDataset``
    and return their joints in crop pixels with the PCKh threshold of each person."""
    import numpy as np
    import torch

    from ftp_pose.data.transforms import affine_points
    from ftp_pose.metrics.posetrack_ap import head_size

    base, index = dataset, None
    if hasattr(dataset, "indices"):          # a torch Subset (a config's max_val_items)
        base, index = dataset.dataset, list(dataset.indices)
    heads = [a.bbox_head for image_id in base.set.labeled_image_ids() for a in base.set.annotations[image_id]]
    if len(heads) != len(base):
        raise ValueError(f"joint_predictions: {len(base)} items but {len(heads)} annotations (ground-truth boxes only)")
    if index is not None:
        heads = [heads[i] for i in index]
    preds, trues, vis, thr = [], [], [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        with torch.no_grad():
            hm = model(torch.stack([it["clip"] for it in items]).to(device)).float().cpu().numpy()
        xy, _ = base.codec.decode(hm, refine="dark")
        for k, it in enumerate(items):
            m = it["meta"]["affine"].numpy().astype(np.float64)
            joints = it["meta"]["joints"].numpy()
            head = heads[start + k]
            if head is None:
                raise ValueError(f"joint_predictions: person {start + k} has no bbox_head (needed for the PCKh threshold)")
            preds.append(xy[k])
            trues.append(affine_points(joints[:, :2], m))
            vis.append(joints[:, 2] > 0)
            thr.append(0.5 * head_size(head) * np.sqrt(abs(np.linalg.det(m[:, :2]))))  # similarity: scales lengths
    return JointPredictions(np.asarray(preds, np.float64), np.asarray(trues, np.float64), np.asarray(vis),
                            np.asarray(thr, np.float64))


def show_jpeg(fig: Any, quality: int = 80) -> None:
    """Display ``fig`` as a JPEG (then close it): photo-like panels (video crops with their noise
    texture) compress several times better than as the inline backend's PNG, which keeps the
    stored notebook small. Line plots stay PNG (``plt.show()``)."""
    from io import BytesIO

    import matplotlib.pyplot as plt
    from IPython.display import display

    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    display(jpeg_image(buf.getvalue(), quality))


def jpeg_image(png: bytes, quality: int = 85) -> Any:
    """A rendered PNG (photo-like panels) as an IPython JPEG image: a stored output a fraction of the size.

    For display only; the PNG files under ``figures/`` stay lossless.
    """
    import io

    from IPython.display import Image
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.open(io.BytesIO(png)).convert("RGB").save(buf, format="jpeg", quality=quality)
    return Image(data=buf.getvalue(), format="jpeg")
