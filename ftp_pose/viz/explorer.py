"""Interactive pruning explorer: move eps_h, eps_l, k and tau, see which tokens FTP-Pose keeps.

:class:`PruningExplorer` wraps a model (``FTPPose`` with the HRB; the baseline works too, without
the HR panels) and a few clip samples (items of a ``PoseTrackClipDataset``). Its widgets
(ipywidgets) are sliders for ``eps_h`` and ``eps_l`` (1 to 10), ``k``, ``tau`` (as a multiple of
the token width ``C``, the default temperature) and a sample picker; the output is one PNG image:

* the three frames with the tokens the LRB kept (cyan), the key frame with the HR tokens kept (yellow);
* the decision graphs (rho against delta) of both branches, kept tokens in red;
* the predicted skeleton on the key frame;

and a status line with the kept-token counts and the time of the whole update (forward pass and
drawing; "computing ..." shows while it runs). The **vs random** checkbox adds the same model with
a seeded random subset of the same size in place of DPC's selection (:class:`RandomSelection`):
kept tokens, their coverage distance and the predicted joints side by side.

Everything is computed by :meth:`PruningExplorer.compute`, which needs no browser (unit-tested);
:meth:`PruningExplorer.update` sets the widget values, computes and redraws. To keep an update
short on a CPU, the figure is built once and its artists are moved in place (``set_data``,
``set_offsets``, ``set_text``; no new figure, no layout pass), and the forward pass is cached per
setting, so that returning to a setting or toggling "vs random" only redraws.
"""
from __future__ import annotations

import io
import textwrap
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ftp_pose.viz.decision_graph import decision_graph_data, plot_decision_graph
from ftp_pose.viz.tokens import HR_KEPT_COLOR, KEPT_COLOR, overlay_kept_tokens

__all__ = ["Explorer", "ExplorerResult", "PruningExplorer", "RandomSelection", "coverage_distance", "crop_images",
           "predicted_joints"]

#: display size (H, W) of every crop panel, whatever the model's input size
DISPLAY_SIZE = (256, 192)


@dataclass
class ExplorerResult:
    """What one explorer update computed (all counts per the shown sample)."""

    sample: str
    eps_h: float
    eps_l: float
    k: int
    tau_scale: float
    num_tokens_l: int
    num_kept_l: int
    kept_l_per_frame: list[int]
    num_tokens_h: int | None
    num_kept_h: int | None
    #: time of the model's forward pass in this update (0 when the result came from the cache)
    forward_ms: float
    joints: np.ndarray                 #: 17 x 3 (x, y in input-crop pixels, score)
    kept_index_l: np.ndarray
    kept_index_h: np.ndarray | None
    png: bytes = field(default=b"", repr=False)
    #: mean distance from every token a branch pruned to its nearest kept token (``coverage_distance``)
    coverage_l: float | None = None
    coverage_h: float | None = None
    #: the same settings with a seeded random selection (when the "vs random" toggle is on)
    random: "ExplorerResult | None" = field(default=None, repr=False)
    #: wall time of the whole update (compute + drawing), set by :meth:`PruningExplorer.update`
    update_ms: float | None = None
    #: True when the forward pass was not run again (the explorer caches it per setting)
    cached: bool = False

    def kept_label(self) -> str:
        """The short label ``"kept: M_h high-res / M_l low-res tokens"`` (no HR part without the HRB)."""
        if self.num_kept_h is None:
            return f"kept: {self.num_kept_l} low-res tokens"
        return f"kept: {self.num_kept_h} high-res / {self.num_kept_l} low-res tokens"

    def summary(self) -> str:
        """One status line with the counts (the update time is shown beside it by the widget)."""
        per = " + ".join(str(v) for v in self.kept_l_per_frame)
        s = f"LRB kept {self.num_kept_l} / {self.num_tokens_l} tokens ({per} per frame)"
        if self.num_kept_h is not None:
            s += f"; HRB kept {self.num_kept_h} / {self.num_tokens_h} tokens"
        return s



def crop_images(clip: Any, size: tuple[int, int] = DISPLAY_SIZE) -> list[np.ndarray]:
    """``T x 3 x H x W`` normalised clip -> ``T`` uint8 RGB images resized to ``size`` (H, W)."""
    import cv2

    from ftp_pose.data import denormalize

    frames = denormalize(clip)
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    return [cv2.resize(np.ascontiguousarray(f), (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for f in frames]


def predicted_joints(heatmaps: Any, input_size: tuple[int, int]) -> np.ndarray:
    """``1 x J x h x w`` heatmaps -> ``J x 3`` (x, y in input-crop pixels, heatmap maximum)."""
    from ftp_pose.data import HeatmapCodec

    hm = heatmaps.detach().float().cpu().numpy() if hasattr(heatmaps, "detach") else np.asarray(heatmaps)
    xy, maxvals = HeatmapCodec(input_size, tuple(hm.shape[-2:])).decode(hm, refine="dark")
    return np.concatenate([xy[0], maxvals[0][:, None]], axis=1)


def coverage_distance(tokens: Any, kept_index: Any) -> float:
    """Mean over all tokens (``1 x N x C``) of the Euclidean distance to the nearest kept token.

    Lower = the kept set represents every token better (0 when everything is kept).
    """
    import torch

    x = tokens[0].float()
    idx = torch.as_tensor(np.asarray(kept_index), device=x.device).long()
    return float(torch.cdist(x, x[idx]).min(dim=1).values.mean())


class RandomSelection:
    """Stands in for a ``DPCPruning`` module: keeps a seeded random subset of the same size.

    The DPC scores are still computed (for the decision graph); only the selection differs. It
    also records the tokens it selected from (``values``) so that the coverage can be measured.
    """

    def __init__(self, inner: Any, seed: int = 0, random: bool = True) -> None:
        self.inner, self.seed, self.random, self.values = inner, seed, random, None

    def __call__(self, x: Any, return_scores: bool = False, values: Any = None, upsample: Any = None):
        import torch

        from ftp_pose.models.dpc import gather_tokens

        kept, idx, scores = self.inner(x, return_scores=return_scores, values=values, upsample=upsample)
        self.values = x if values is None else values
        if not self.random:
            return kept, idx, scores
        b, n = self.values.shape[:2]
        g = torch.Generator().manual_seed(self.seed)
        idx = torch.stack([torch.randperm(n, generator=g)[:idx.shape[1]].sort().values for _ in range(b)])
        idx = idx.to(self.values.device)
        return gather_tokens(self.values, idx), idx, scores


class _Selections:
    """Context manager: wrap the model's pruning modules in :class:`RandomSelection` (restored on exit)."""

    def __init__(self, model: Any, random: bool, seed: int = 0) -> None:
        self.mgfe, self.random, self.seed = model.mgfe, random, seed
        self.names = ["prune_l"] + (["prune_h"] if model.config.use_hrb else [])
        self.wrappers: dict[str, RandomSelection] = {}

    def __enter__(self) -> dict[str, RandomSelection]:
        for name in self.names:
            inner = self.mgfe._modules[name]
            self.wrappers[name] = RandomSelection(inner, self.seed, self.random)
            # a plain attribute shadows the registered submodule only for this forward
            object.__setattr__(self.mgfe, name, self.wrappers[name])
        return self.wrappers

    def __exit__(self, *exc: Any) -> None:
        for name in self.names:
            object.__delattr__(self.mgfe, name)


class PruningExplorer:
    """Widgets + update logic. ``samples`` maps a display name to a dataset item (``clip``, ``meta``)."""

    def __init__(self, model: Any, samples: Mapping[str, Mapping[str, Any]], *, eps_h: float = 6, eps_l: float = 6,
                 k: int | None = None, tau_scale: float = 1.0, device: str = "cpu", joint_thresh: float = 0.2,
                 build_widgets: bool = True) -> None:
        if not samples:
            raise ValueError("PruningExplorer needs at least one sample")
        self.model = model.eval()
        self.samples = dict(samples)
        self.device = device
        self.joint_thresh = joint_thresh
        cfg = model.config
        self.has_hrb = bool(cfg.use_hrb)
        self.state: dict[str, Any] = dict(eps_h=float(eps_h), eps_l=float(eps_l), k=int(k or cfg.k),
                                          tau_scale=float(tau_scale), sample=next(iter(self.samples)),
                                          random=False)
        self.seed = 0
        self.last: ExplorerResult | None = None
        #: forward passes by (sample, eps_h, eps_l, k, tau_scale, random): moving back to a setting
        #: (or toggling "vs random") only redraws; at most ``cache_size`` entries, oldest dropped first
        self.cache_size = 32
        self._cache: dict[tuple, tuple[ExplorerResult, dict]] = {}
        self._frame_cache: dict[str, list[np.ndarray]] = {}
        self._views: dict[str, _ExplorerView] = {}
        self._busy = False
        self.controls: dict[str, Any] = {}
        self.image = self.status_label = self.widget = None
        if build_widgets:
            self._build_widgets()

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self) -> None:
        import ipywidgets as W

        st = self.state
        common = dict(continuous_update=False, style={"description_width": "70px"},
                      layout=W.Layout(width="320px"))
        self.controls = {
            "eps_h": W.IntSlider(value=int(st["eps_h"]), min=1, max=10, description="eps_h", **common),
            "eps_l": W.IntSlider(value=int(st["eps_l"]), min=1, max=10, description="eps_l", **common),
            "k": W.IntSlider(value=st["k"], min=1, max=16, description="k", **common),
            "tau_scale": W.FloatLogSlider(value=st["tau_scale"], base=10, min=-2, max=2, step=0.25,
                                          description="tau / C", readout_format=".3g", **common),
            "sample": W.Dropdown(options=list(self.samples), value=st["sample"], description="sample",
                                 style={"description_width": "70px"}, layout=W.Layout(width="420px")),
            "random": W.Checkbox(value=st["random"], description="vs random pruning at the same eps",
                                 indent=False, layout=W.Layout(width="420px")),
        }
        if not self.has_hrb:
            self.controls["eps_h"].disabled = True
        for name, ctl in self.controls.items():
            ctl.observe(self._on_change, names="value")
        self.status_label = W.HTML(value="", layout=W.Layout(margin="4px 0"))
        self.status_label.add_class("ftp-explorer-status")
        self.image = W.Image(format="png", layout=W.Layout(max_width="1100px"))
        self.image.add_class("ftp-explorer-image")
        left = W.VBox([self.controls[n] for n in ("eps_h", "eps_l", "k", "tau_scale")])
        right = W.VBox([self.controls["sample"], self.controls["random"]])
        self.widget = W.VBox([W.HBox([left, right]), self.status_label, self.image])

    def _on_change(self, change: dict) -> None:
        if self._busy:
            return
        self.update(**{n: c.value for n, c in self.controls.items()})

    # ------------------------------------------------------------------ logic
    def _configure(self, eps_h: float, eps_l: float, k: int, tau_scale: float) -> None:
        cfg = self.model.config
        tau = float(tau_scale) * (1.0 if cfg.dpc_normalize else cfg.embed_dim)   # tau_scale 1 = the default, C
        self.model.set_pruning(eps_h=eps_h if self.has_hrb else None, eps_l=eps_l, k=k, tau=tau)

    def compute(self, eps_h: float | None = None, eps_l: float | None = None, k: int | None = None,
                tau_scale: float | None = None, sample: str | None = None, render: bool = True,
                random: bool | None = None) -> ExplorerResult:
        """Run the model on ``sample`` with these pruning settings (None = keep the current one).

        With ``random=True`` the result also carries (``.random``) the same model with a seeded
        random selection of the same size in each branch, and the image shows both side by side.
        """
        st = self.state
        if sample is not None and sample not in self.samples:
            raise KeyError(f"unknown sample {sample!r}; choose one of {list(self.samples)}")
        for name, v in (("eps_h", eps_h), ("eps_l", eps_l), ("k", k), ("tau_scale", tau_scale), ("sample", sample),
                        ("random", random)):
            if v is not None:
                st[name] = v
        if not (1 <= st["eps_h"] and 1 <= st["eps_l"]):
            raise ValueError(f"pruning ratios must be >= 1, got eps_h={st['eps_h']}, eps_l={st['eps_l']}")
        if not self.has_hrb and st["eps_l"] != 1:
            raise ValueError(f"the baseline has no pruning: eps_l must be 1, got {st['eps_l']}")
        self._configure(st["eps_h"], st["eps_l"], st["k"], st["tau_scale"])
        item = self.samples[st["sample"]]
        res, info = self._cached_run(item, random=False)
        if st["random"]:
            res.random = self._cached_run(item, random=True)[0]
        if render:
            res.png = self.render_png(item, info, res) if res.random is None else self.render_compare_png(item, res)
        self.last = res
        return res

    def clear_cache(self) -> None:
        """Forget the cached forward passes (call it after changing the model's weights)."""
        self._cache.clear()

    def _cached_run(self, item: Mapping[str, Any], random: bool) -> tuple[ExplorerResult, dict]:
        """:meth:`_run`, or a copy of its cached result (``forward_ms = 0``, ``cached = True``)."""
        st = self.state
        key = (st["sample"], float(st["eps_h"]), float(st["eps_l"]), int(st["k"]), float(st["tau_scale"]), random)
        if key in self._cache:
            res, info = self._cache.pop(key)
            self._cache[key] = (res, info)                  # most recently used last
            return replace(res, forward_ms=0.0, cached=True), info
        res, info = self._run(item, random)
        keep = {name: info[name] for name in ("rho_h", "delta_h", "rho_l", "delta_l") if name in info}
        self._cache[key] = (replace(res), keep)
        while len(self._cache) > self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        return res, keep

    def _run(self, item: Mapping[str, Any], random: bool) -> tuple[ExplorerResult, dict]:
        import torch

        st = self.state
        clip = item["clip"].unsqueeze(0).to(self.device)
        with torch.no_grad(), _Selections(self.model, random, self.seed) as sel:
            t0 = time.perf_counter()
            heatmaps, info = self.model(clip, return_info=True)
            if clip.device.type == "cuda":
                torch.cuda.synchronize()
            ms = 1000.0 * (time.perf_counter() - t0)
            cover = {name: coverage_distance(w.values, info["kept_index_" + name[-1]][0].cpu())
                     for name, w in sel.items()}
        cfg = self.model.config
        t, n = cfg.num_frames, cfg.grid_size[0] * cfg.grid_size[1]
        idx_l = info["kept_index_l"][0].cpu().numpy()
        idx_h = info["kept_index_h"][0].cpu().numpy() if "kept_index_h" in info else None
        res = ExplorerResult(
            sample=st["sample"], eps_h=st["eps_h"], eps_l=st["eps_l"], k=st["k"], tau_scale=st["tau_scale"],
            num_tokens_l=t * n, num_kept_l=int(idx_l.size),
            kept_l_per_frame=[int((idx_l // n == f).sum()) for f in range(t)],
            num_tokens_h=int(info["rho_h"].shape[1]) if idx_h is not None else None,
            num_kept_h=int(idx_h.size) if idx_h is not None else None,
            forward_ms=ms, joints=predicted_joints(heatmaps, cfg.input_size),
            kept_index_l=idx_l, kept_index_h=idx_h,
            coverage_l=cover["prune_l"], coverage_h=cover.get("prune_h"))
        return res, info

    def update(self, **changes: Any) -> ExplorerResult:
        """Set widget values (``eps_h, eps_l, k, tau_scale, sample``), recompute and redraw."""
        unknown = set(changes) - {"eps_h", "eps_l", "k", "tau_scale", "sample", "random"}
        if unknown:
            raise TypeError(f"PruningExplorer.update: unknown setting(s) {sorted(unknown)}")
        self._busy = True
        try:
            for name, v in changes.items():
                if name in self.controls and self.controls[name].value != v:
                    self.controls[name].value = v
        finally:
            self._busy = False
        t0 = time.perf_counter()
        if self.status_label is not None:   # busy indicator, replaced when the new image is ready
            self.status_label.value = "<i>computing ...</i>"
        res = self.compute(**changes, render=True)  # type: ignore[arg-type]
        if self.image is not None:
            self.image.value = res.png
        res.update_ms = 1000.0 * (time.perf_counter() - t0)
        if self.status_label is not None:
            vs = " (top: DPC, bottom: random)" if res.random is not None else ""
            runs = [res] + ([res.random] if res.random is not None else [])
            fw = ("forward pass cached" if all(r.cached for r in runs)
                  else f"of which forward {sum(r.forward_ms for r in runs):.0f} ms")
            self.status_label.value = (f"<b>{res.kept_label()}</b>{vs} ({res.summary()}); update "
                                       f"{res.update_ms:.0f} ms, {fw}")
        return res

    # ------------------------------------------------------------------ drawing
    def _frames(self, sample: str) -> list[np.ndarray]:
        """The display crops of ``sample`` (computed once per sample)."""
        if sample not in self._frame_cache:
            self._frame_cache[sample] = crop_images(self.samples[sample]["clip"])
        return self._frame_cache[sample]

    def _view(self, compare: bool) -> "_ExplorerView":
        key = "compare" if compare else "single"
        if key not in self._views:
            cfg = self.model.config
            self._views[key] = (_CompareView if compare else _SingleView)(cfg, self.has_hrb, self.joint_thresh)
        return self._views[key]

    def figure(self, item: Mapping[str, Any], info: Mapping[str, Any], res: ExplorerResult) -> Any:
        """The matplotlib figure of one result (2 rows: crops, then graphs and prediction).

        The figure is built once; later calls move its artists (``set_data``, ``set_offsets``,
        ``set_text``) and return the same figure.
        """
        view = self._view(False)
        view.update(self._frames(res.sample), info, res)
        return view.fig

    def compare_figure(self, item: Mapping[str, Any], res: ExplorerResult) -> Any:
        """DPC (top row) against the seeded random selection (bottom row): kept tokens of the LRB on
        the key frame and of the HRB, the predicted pose, and the coverage distances (one figure,
        updated in place like :meth:`figure`)."""
        if res.random is None:
            raise ValueError("compare_figure needs a result computed with random=True")
        view = self._view(True)
        view.update(self._frames(res.sample), None, res)
        return view.fig

    def render_compare_png(self, item: Mapping[str, Any], res: ExplorerResult) -> bytes:
        self.compare_figure(item, res)
        return self._view(True).png()

    def save_png(self, name: str = "05_explorer.png") -> Path:
        """Write the last rendered image atomically to ``figures/<name>``; returns the path."""
        from ftp_pose.io import atomic_write
        from ftp_pose.paths import figures_dir

        if self.last is None or not self.last.png:
            raise RuntimeError("nothing rendered yet: call update() or compute(render=True) first")
        png = self.last.png

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(png)
        return atomic_write(figures_dir() / name, write)

    def render_png(self, item: Mapping[str, Any], info: Mapping[str, Any], res: ExplorerResult) -> bytes:
        self.figure(item, info, res)
        return self._view(False).png()


class _ExplorerView:
    """A matplotlib figure (Agg canvas, no pyplot) built once and redrawn in place.

    Subclasses create their artists in ``__init__`` and move them in ``update``; ``png`` draws
    the canvas and encodes it (Pillow, fast compression: the PNG is shown once, not stored).
    """

    fig: Any

    def __init__(self, cfg: Any, has_hrb: bool, joint_thresh: float) -> None:
        self.cfg, self.has_hrb, self.joint_thresh = cfg, has_hrb, joint_thresh
        self.t, self.key = cfg.num_frames, cfg.num_frames // 2
        self.n = cfg.grid_size[0] * cfg.grid_size[1]
        self.scale = np.array([DISPLAY_SIZE[1] / cfg.input_size[1], DISPLAY_SIZE[0] / cfg.input_size[0]])
        self.blank = np.zeros((*DISPLAY_SIZE, 3), np.uint8)

    def _new_figure(self, figsize: tuple[float, float]) -> tuple[Any, Any]:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, dpi=72)
        FigureCanvasAgg(fig)
        return fig, fig.subplots(2, 4)

    def _image(self, ax: Any) -> Any:
        ax.set_xticks([])
        ax.set_yticks([])
        return ax.imshow(self.blank, interpolation="nearest")

    def _pose(self, frames: list[np.ndarray], joints: np.ndarray) -> np.ndarray:
        from ftp_pose.viz.skeleton import draw_skeleton

        return draw_skeleton(frames[self.key], joints[:, :2] * self.scale, scores=joints[:, 2],
                             thresh=self.joint_thresh)

    def png(self) -> bytes:
        from PIL import Image

        self.fig.canvas.draw()
        rgba = np.asarray(self.fig.canvas.buffer_rgba())
        buf = io.BytesIO()
        Image.fromarray(rgba[..., :3]).save(buf, format="png", compress_level=1)
        return buf.getvalue()


class _DecisionGraphArtists:
    """One decision graph (log rho against delta) whose points move with ``set_offsets``."""

    def __init__(self, ax: Any, size: float) -> None:
        self.ax = ax
        self.pruned = ax.scatter([], [], s=size, c="0.6", alpha=0.7, linewidths=0, label="pruned")
        self.kept = ax.scatter([], [], s=size * 1.6, c="tab:red", edgecolors="k", linewidths=0.4,
                               label="kept (centres)")
        from matplotlib.ticker import MaxNLocator

        ax.set_xlabel("log density  log rho")
        ax.set_ylabel("distance to a denser token  delta")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        for axis in (ax.xaxis, ax.yaxis):   # few tick labels: readable, and less text to draw per update
            axis.set_major_locator(MaxNLocator(nbins=4))
        ax.ticklabel_format(style="sci", scilimits=(-2, 3))   # HR log rho spans ~1e-3: "x 1e-3", not long labels

    def update(self, rho: Any, delta: Any, kept_index: np.ndarray, title: str) -> None:
        g = decision_graph_data(rho, delta, kept_index)
        x = np.log(np.maximum(g.rho, 1e-300))
        self.pruned.set_offsets(np.column_stack([x[~g.kept], g.delta[~g.kept]]))
        self.kept.set_offsets(np.column_stack([x[g.kept], g.delta[g.kept]]))
        for lo_hi, setter in (((x.min(), x.max()), self.ax.set_xlim), ((g.delta.min(), g.delta.max()), self.ax.set_ylim)):
            lo, hi = float(lo_hi[0]), float(lo_hi[1])
            pad = 0.05 * (hi - lo) if hi > lo else 0.5
            setter(lo - pad, hi + pad)
        self.ax.set_title(title, fontsize=10)


class _SingleView(_ExplorerView):
    """Row 1: the frames with the LRB's kept tokens, the key frame with the HRB's; row 2: both
    decision graphs, the predicted pose and the settings."""

    def __init__(self, cfg: Any, has_hrb: bool, joint_thresh: float) -> None:
        super().__init__(cfg, has_hrb, joint_thresh)
        self.fig, axes = self._new_figure((12.5, 7.2))
        self.axes = axes
        self.frames_l = [self._image(axes[0, f]) for f in range(min(self.t, 3))]
        for f in range(min(self.t, 3), 3):
            axes[0, f].set_visible(False)
        self.frame_h = self._image(axes[0, 3])
        self.graph_h = _DecisionGraphArtists(axes[1, 0], 5)
        self.graph_l = _DecisionGraphArtists(axes[1, 1], 8)
        if not has_hrb:
            axes[0, 3].set_visible(False)
            axes[1, 0].set_visible(False)
        self.pose = self._image(axes[1, 2])
        axes[1, 2].set_title("predicted pose (key frame)", fontsize=10)
        axes[1, 3].axis("off")
        self.text = axes[1, 3].text(0.0, 0.95, "", va="top", family="monospace", fontsize=10,
                                    transform=axes[1, 3].transAxes)
        for f, ax in enumerate(axes[0, :3]):
            ax.set_title(" ", fontsize=10)
        axes[0, 3].set_title(" ", fontsize=10)
        self.graph_h.ax.set_title(" ")
        self.graph_l.ax.set_title(" ")
        self.fig.tight_layout()          # once: the layout does not depend on the settings

    def update(self, frames: list[np.ndarray], info: Mapping[str, Any], res: ExplorerResult) -> None:
        cfg, t, key = self.cfg, self.t, self.key
        for f, artist in enumerate(self.frames_l):
            artist.set_data(overlay_kept_tokens(frames[f], res.kept_index_l, cfg.grid_size, frame=f, num_frames=t,
                                                color=KEPT_COLOR))
            rel = "t" if f == key else f"t{f - key:+d}"
            artist.axes.set_title(f"LRB, frame {rel}: {res.kept_l_per_frame[f]} kept", fontsize=10)
        if res.kept_index_h is not None:
            self.frame_h.set_data(overlay_kept_tokens(frames[key], res.kept_index_h, cfg.heatmap_size,
                                                      color=HR_KEPT_COLOR, dim=0.35))
            self.frame_h.axes.set_title(f"HRB, key frame: {res.num_kept_h}/{res.num_tokens_h} kept", fontsize=10)
            self.graph_h.update(info["rho_h"][0], info["delta_h"][0], res.kept_index_h,
                                f"HRB decision graph (eps_h={res.eps_h:g})")
        self.graph_l.update(info["rho_l"][0], info["delta_l"][0], res.kept_index_l,
                            f"LRB decision graph (eps_l={res.eps_l:g})")
        self.pose.set_data(self._pose(frames, res.joints))
        tau = "C" if res.tau_scale == 1.0 else f"{res.tau_scale:.3g} C"
        sample = textwrap.fill(f"sample: {res.sample}", 30, subsequent_indent="  ")
        text = (f"{sample}\n\neps_h = {res.eps_h:g}, eps_l = {res.eps_l:g}\nk = {res.k}, tau = {tau}\n\n"
                f"LRB: {res.num_kept_l} / {res.num_tokens_l} tokens\n")
        if res.num_kept_h is not None:
            text += f"HRB: {res.num_kept_h} / {res.num_tokens_h} tokens\n"
        self.text.set_text(text)


class _CompareView(_ExplorerView):
    """DPC (top row) against random (bottom row): LRB key frame, HRB, predicted pose, coverage."""

    def __init__(self, cfg: Any, has_hrb: bool, joint_thresh: float) -> None:
        super().__init__(cfg, has_hrb, joint_thresh)
        self.fig, axes = self._new_figure((10.5, 7.2))
        self.rows = []
        for row in range(2):
            arts = {"l": self._image(axes[row, 0]), "h": self._image(axes[row, 1]), "pose": self._image(axes[row, 2])}
            if not has_hrb:
                axes[row, 1].set_visible(False)
            axes[row, 3].axis("off")
            arts["text"] = axes[row, 3].text(0.0, 0.95, "", va="top", family="monospace", fontsize=9,
                                             transform=axes[row, 3].transAxes)
            for ax in axes[row, :3]:
                ax.set_title(" ", fontsize=10)
            self.rows.append(arts)
        self.fig.tight_layout()

    def update(self, frames: list[np.ndarray], info: Any, res: ExplorerResult) -> None:
        cfg, key = self.cfg, self.key
        for arts, (name, r) in zip(self.rows, (("DPC-KNN", res), ("random", res.random))):
            on_key = int((r.kept_index_l // self.n == key).sum())
            arts["l"].set_data(overlay_kept_tokens(frames[key], r.kept_index_l, cfg.grid_size, frame=key,
                                                   num_frames=self.t, color=KEPT_COLOR))
            arts["l"].axes.set_title(f"{name}: LRB, key frame ({on_key} kept)", fontsize=10)
            if r.kept_index_h is not None:
                arts["h"].set_data(overlay_kept_tokens(frames[key], r.kept_index_h, cfg.heatmap_size,
                                                       color=HR_KEPT_COLOR, dim=0.35))
                arts["h"].axes.set_title(f"{name}: HRB ({r.num_kept_h} kept)", fontsize=10)
            arts["pose"].set_data(self._pose(frames, r.joints))
            arts["pose"].axes.set_title(f"{name}: predicted pose", fontsize=10)
            text = (f"{name}\neps_h = {r.eps_h:g}, eps_l = {r.eps_l:g}\n\ncoverage distance\n"
                    f"(mean distance of every\ntoken to its nearest kept\ntoken; lower = better)\n"
                    f"  LRB: {r.coverage_l:.3f}\n")
            if r.coverage_h is not None:
                text += f"  HRB: {r.coverage_h:.3f}\n"
            text += f"\nmean joint score {r.joints[:, 2].mean():.3f}"
            arts["text"].set_text(text)


#: the name the notebooks and tests use for the explorer
Explorer = PruningExplorer
