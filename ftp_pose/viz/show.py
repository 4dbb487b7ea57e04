"""``python -m ftp_pose show``: draw 3-frame samples (crops, skeletons, key-frame heatmaps).

With no arguments it renders a small synthetic set into ``data/synth_demo`` (once; gitignored)
and writes ``figures/samples_synthetic.png``, then draws clips of the real PoseTrack 2018
sample into ``figures/samples_posetrack18.png``. ``--data DIR`` draws from another synthetic or
PoseTrack root, ``--real`` only the real sample. Figures go to ``$FTP_POSE_FIGURES`` (default
``figures/``) and are written atomically.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np

from ftp_pose.errors import MissingFileError
from ftp_pose.io import atomic_write
from ftp_pose.keypoints import NUM_JOINTS
from ftp_pose.paths import REPO_ROOT, figures_dir, posetrack18_sample

#: where the default synthetic demo set is cached (gitignored)
SYNTH_DEMO_DIR = REPO_ROOT / "data" / "synth_demo"


def find_annotations(root: str | Path, split: str = "val") -> Path:
    """The annotation json (or per-video folder) of ``split`` under a dataset root.

    Looks for ``annotations/<split>.json`` (synthetic merged), ``annotations/<split>/`` (PoseTrack
    per-video jsons), then a single ``annotations/*<split>*.json``.
    """
    ann = Path(root) / "annotations"
    for cand in (ann / f"{split}.json", ann / split):
        if cand.exists():
            return cand
    hits = sorted(p for p in ann.glob(f"*{split}*.json") if "detection" not in p.name)
    if len(hits) == 1:
        return hits[0]
    raise MissingFileError(f"no '{split}' annotations under {ann} (looked for {split}.json, {split}/, "
                            f"*{split}*.json; found {[p.name for p in hits]})")


def ensure_synth_demo(path: Path | None = None, seed: int = 0) -> Path:
    """Render the small demo set into ``path`` (default :data:`SYNTH_DEMO_DIR`) unless it is already
    there (built in a temp folder beside it, then renamed, so an interrupted run leaves nothing
    half-made)."""
    path = Path(path) if path is not None else SYNTH_DEMO_DIR
    if (path / "annotations" / "val.json").is_file():
        return path
    from ftp_pose.data.synthetic import generate_synthetic_posetrack

    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    generate_synthetic_posetrack(tmp, n_videos=2, n_val_videos=3, n_frames=8, seed=seed, difficulty="medium",
                                 progress=False)   # no bar: notebooks call this, and their outputs are compared
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def _pick(ds, n: int, seed: int) -> list[int]:
    """``n`` sample indices: people with many visible joints, from different videos when possible,
    preferring key frames whose neighbours exist (not at a video boundary)."""
    s = ds.set
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ds))

    def quality(i: int) -> tuple:
        it = ds.items[i]
        vis = 0 if it.joints is None else int((it.joints[:, 2] > 0).sum())
        ids = s.clip_ids(it.image_id, ds.offsets)
        inner = sum(k != it.image_id for k in ids)
        return (inner, min(vis, 13), float(it.box[2] * it.box[3]) ** 0.25)

    order = sorted(order, key=lambda i: quality(int(i)), reverse=True)
    chosen, videos = [], set()
    for i in order:
        vid = s.images[ds.items[int(i)].image_id].vid_id
        if vid not in videos:
            chosen.append(int(i))
            videos.add(vid)
        if len(chosen) == n:
            return chosen
    for i in order:
        if int(i) not in chosen:
            chosen.append(int(i))
        if len(chosen) == n:
            break
    return chosen


def _frame_joints(ds, index: int, sample: dict) -> list[np.ndarray | None]:
    """The sample's person (same ``track_id``) in every frame of the clip, in crop pixels."""
    from ftp_pose.data.transforms import affine_points

    item = ds.items[index]
    m = np.asarray(sample["meta"]["affine"], np.float32)
    out: list[np.ndarray | None] = []
    for t, img_id in enumerate(ds.set.clip_ids(item.image_id, ds.offsets)):
        match = [a for a in ds.set.annotations[img_id] if item.track_id >= 0 and a.track_id == item.track_id]
        if not match or (img_id != item.image_id and t == ds.key_index):
            out.append(None)
            continue
        k = match[0].keypoints
        out.append(np.concatenate([affine_points(k[:, :2], m), k[:, 2:]], 1))
    return out


def draw_samples(ann: str | Path, image_root: str | Path, out: str | Path, n: int = 3, title: str = "",
                 seed: int = 0, full_frames: int = 3) -> Path:
    """Figure: a row of full key frames with every gt person, then ``n`` clip rows
    (``t-1, t, t+1`` crops with the person's skeleton in each frame, and the key-frame heatmaps)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ftp_pose.data import PoseTrackClipDataset, read_rgb
    from ftp_pose.viz.skeleton import draw_box, draw_skeleton, plot_clip

    ds = PoseTrackClipDataset(ann, image_root, boxes="gt", train=False)
    if len(ds) == 0:
        raise ValueError(f"{ann}: no person boxes on labeled frames to draw")
    picks = _pick(ds, n, seed)
    key_images = list(dict.fromkeys(ds.items[i].image_id for i in picks))[:full_frames]
    n_cols = len(ds.offsets) + 1
    fig = Figure(figsize=(2.3 * n_cols, 2.2 + 3.0 * len(picks)), dpi=110)  # own canvas: no backend switch
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1 + len(picks), 1, height_ratios=[2.0] + [3.0] * len(picks), hspace=0.25)
    top = grid[0].subgridspec(1, len(key_images), wspace=0.05)
    for c, img_id in enumerate(key_images):
        img = read_rgb(ds.set.image_path(img_id, image_root))
        for a in ds.set.annotations[img_id]:
            img = draw_box(img, a.bbox, label=f"id {a.track_id}")
            img = draw_skeleton(img, a.keypoints)
        ax = fig.add_subplot(top[c])
        ax.imshow(img)
        ax.set_title(f"video {ds.set.images[img_id].vid_id}, frame {ds.set.images[img_id].frame_index}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for r, i in enumerate(picks):
        sample = ds[i]
        row = grid[1 + r].subgridspec(1, n_cols, wspace=0.05)
        axes = [fig.add_subplot(row[c]) for c in range(n_cols)]
        plot_clip(sample, axes, frame_joints=_frame_joints(ds, i, sample))
        m = sample["meta"]
        axes[0].set_ylabel(f"{m['vid_id']} f{m['frame_index']}\ntrack {m['track_id']}", fontsize=8)
    fig.suptitle(title or f"{Path(ann).name}: 3-frame clips (ground-truth boxes)", fontsize=10)
    out = Path(out)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))
    return out


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--data", type=Path, help="a synthetic or PoseTrack root (with annotations/ and images/)")
    src.add_argument("--real", action="store_true", help="only the real PoseTrack 2018 sample")
    parser.add_argument("--split", default="val", help="split to draw from (default val)")
    parser.add_argument("--n", type=int, default=3, help="clips per figure (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="which samples are picked")
    parser.add_argument("--out", type=Path, help="output png (default figures/samples_<name>.png)")


def run_cli(args: argparse.Namespace) -> int:
    figs = figures_dir()
    written: list[Path] = []
    real = posetrack18_sample()
    real_ann = real / "annotations" / "test_posetrack18_val.json"
    real_title = "PoseTrack 2018 val sample (only key frames exist: t-1 and t+1 repeat the key frame)"
    if args.real:
        if not real_ann.is_file():
            raise MissingFileError(f"real sample not found: {real_ann} (check $FTP_POSE_DATA)")
        written.append(draw_samples(real_ann, real, args.out or figs / "samples_posetrack18.png", args.n,
                                    real_title, args.seed))
    elif args.data is not None:
        if not Path(args.data).is_dir():
            raise MissingFileError(f"--data: folder not found: {args.data}")
        ann = find_annotations(args.data, args.split)
        name = Path(args.data).resolve().name
        written.append(draw_samples(ann, args.data, args.out or figs / f"samples_{name}.png", args.n,
                                    f"{name} ({args.split})", args.seed))
    else:
        root = ensure_synth_demo()
        written.append(draw_samples(find_annotations(root, args.split), root,
                                    args.out or figs / "samples_synthetic.png", args.n,
                                    "synthetic PoseTrack-format videos (val split)", args.seed))
        if real_ann.is_file():
            written.append(draw_samples(real_ann, real, figs / "samples_posetrack18.png", args.n, real_title,
                                        args.seed))
        else:
            print(f"real sample not found at {real_ann} (set FTP_POSE_DATA); skipped samples_posetrack18.png")
    for p in written:
        print(f"wrote {p}")
    return 0
