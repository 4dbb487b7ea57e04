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
:meth:`PruningExplorer.update` sets the widget values, computes and redraws.
"""
from __future__ import annotations

import io
import textwrap
import time
from dataclasses import dataclass, field
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
        res, info = self._run(item, random=False)
        if st["random"]:
            res.random = self._run(item, random=True)[0]
        if render:
            res.png = self.render_png(item, info, res) if res.random is None else self.render_compare_png(item, res)
        self.last = res
        return res

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
            self.status_label.value = (f"<b>{res.kept_label()}</b>{vs} ({res.summary()}); update "
                                       f"{res.update_ms:.0f} ms, of which forward {res.forward_ms:.0f} ms")
        return res

    # ------------------------------------------------------------------ drawing
    def figure(self, item: Mapping[str, Any], info: Mapping[str, Any], res: ExplorerResult) -> Any:
        """The matplotlib figure of one result (2 rows: crops, then graphs and prediction)."""
        from matplotlib.figure import Figure

        from ftp_pose.viz.skeleton import draw_skeleton

        cfg = self.model.config
        t, key = cfg.num_frames, cfg.num_frames // 2
        frames = crop_images(item["clip"])
        fig = Figure(figsize=(12.5, 7.2), dpi=72)
        axes = fig.subplots(2, 4)
        for f in range(t if t <= 3 else 3):
            img = overlay_kept_tokens(frames[f], res.kept_index_l, cfg.grid_size, frame=f, num_frames=t,
                                      color=KEPT_COLOR)
            rel = "t" if f == key else f"t{f - key:+d}"
            axes[0, f].imshow(img)
            axes[0, f].set_title(f"LRB, frame {rel}: {res.kept_l_per_frame[f]} kept", fontsize=10)
        hr_grid = cfg.heatmap_size
        if res.kept_index_h is not None:
            img = overlay_kept_tokens(frames[key], res.kept_index_h, hr_grid, color=HR_KEPT_COLOR, dim=0.35)
            axes[0, 3].imshow(img)
            axes[0, 3].set_title(f"HRB, key frame: {res.num_kept_h}/{res.num_tokens_h} kept", fontsize=10)
            g = decision_graph_data(info["rho_h"][0], info["delta_h"][0], res.kept_index_h, hr_grid)
            plot_decision_graph(g, axes[1, 0], title=f"HRB decision graph (eps_h={res.eps_h:g})", log_rho=True, s=5)
        else:
            axes[0, 3].set_visible(False)
            axes[1, 0].set_visible(False)
        g = decision_graph_data(info["rho_l"][0], info["delta_l"][0], res.kept_index_l, cfg.grid_size, t)
        plot_decision_graph(g, axes[1, 1], title=f"LRB decision graph (eps_l={res.eps_l:g})", log_rho=True, s=8)
        scale = np.array([DISPLAY_SIZE[1] / cfg.input_size[1], DISPLAY_SIZE[0] / cfg.input_size[0]])
        pred = draw_skeleton(frames[key], res.joints[:, :2] * scale, scores=res.joints[:, 2], thresh=self.joint_thresh)
        axes[1, 2].imshow(pred)
        axes[1, 2].set_title("predicted pose (key frame)", fontsize=10)
        axes[1, 3].axis("off")
        tau = "C" if res.tau_scale == 1.0 else f"{res.tau_scale:.3g} C"
        sample = textwrap.fill(f"sample: {res.sample}", 30, subsequent_indent="  ")
        text = (f"{sample}\n\neps_h = {res.eps_h:g}, eps_l = {res.eps_l:g}\nk = {res.k}, tau = {tau}\n\n"
                f"LRB: {res.num_kept_l} / {res.num_tokens_l} tokens\n")
        if res.num_kept_h is not None:
            text += f"HRB: {res.num_kept_h} / {res.num_tokens_h} tokens\n"
        axes[1, 3].text(0.0, 0.95, text, va="top", family="monospace", fontsize=10, transform=axes[1, 3].transAxes)
        for ax in list(axes[0]) + [axes[1, 2]]:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        return fig

    def compare_figure(self, item: Mapping[str, Any], res: ExplorerResult) -> Any:
        """DPC (top row) against the seeded random selection (bottom row): kept tokens of the LRB on
        the key frame and of the HRB, the predicted pose, and the coverage distances."""
        from matplotlib.figure import Figure

        from ftp_pose.viz.skeleton import draw_skeleton

        if res.random is None:
            raise ValueError("compare_figure needs a result computed with random=True")
        cfg = self.model.config
        t, key, n = cfg.num_frames, cfg.num_frames // 2, cfg.grid_size[0] * cfg.grid_size[1]
        frames = crop_images(item["clip"])
        scale = np.array([DISPLAY_SIZE[1] / cfg.input_size[1], DISPLAY_SIZE[0] / cfg.input_size[0]])
        fig = Figure(figsize=(10.5, 7.2), dpi=72)
        axes = fig.subplots(2, 4)
        for row, (name, r) in enumerate((("DPC-KNN", res), ("random", res.random))):
            on_key = int((r.kept_index_l // n == key).sum())
            axes[row, 0].imshow(overlay_kept_tokens(frames[key], r.kept_index_l, cfg.grid_size, frame=key,
                                                    num_frames=t, color=KEPT_COLOR))
            axes[row, 0].set_title(f"{name}: LRB, key frame ({on_key} kept)", fontsize=10)
            if r.kept_index_h is not None:
                axes[row, 1].imshow(overlay_kept_tokens(frames[key], r.kept_index_h, cfg.heatmap_size,
                                                        color=HR_KEPT_COLOR, dim=0.35))
                axes[row, 1].set_title(f"{name}: HRB ({r.num_kept_h} kept)", fontsize=10)
            else:
                axes[row, 1].set_visible(False)
            axes[row, 2].imshow(draw_skeleton(frames[key], r.joints[:, :2] * scale, scores=r.joints[:, 2],
                                              thresh=self.joint_thresh))
            axes[row, 2].set_title(f"{name}: predicted pose", fontsize=10)
            text = (f"{name}\neps_h = {r.eps_h:g}, eps_l = {r.eps_l:g}\n\ncoverage distance\n"
                    f"(mean distance of every\ntoken to its nearest kept\ntoken; lower = better)\n"
                    f"  LRB: {r.coverage_l:.3f}\n")
            if r.coverage_h is not None:
                text += f"  HRB: {r.coverage_h:.3f}\n"
            text += f"\nmean joint score {r.joints[:, 2].mean():.3f}"
            axes[row, 3].axis("off")
            axes[row, 3].text(0.0, 0.95, text, va="top", family="monospace", fontsize=9,
                              transform=axes[row, 3].transAxes)
            for ax in axes[row, :3]:
                ax.set_xticks([])
                ax.set_yticks([])
        fig.tight_layout()
        return fig

    def render_compare_png(self, item: Mapping[str, Any], res: ExplorerResult) -> bytes:
        buf = io.BytesIO()
        self.compare_figure(item, res).savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()

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
        fig = self.figure(item, info, res)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()


#: the name the notebooks and tests use for the explorer
Explorer = PruningExplorer
