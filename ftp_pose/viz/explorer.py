"""Interactive pruning explorer: move eps_h, eps_l, k and tau, see which tokens FTP-Pose keeps.

:class:`PruningExplorer` wraps a model (``FTPPose`` with the HRB; the baseline works too, without
the HR panels) and a few clip samples (items of a ``PoseTrackClipDataset``). Its widgets
(ipywidgets) are sliders for ``eps_h`` and ``eps_l`` (1 to 10), ``k``, ``tau`` (as a multiple of
the token width ``C``, the default temperature) and a sample picker; the output is one PNG image:

* the three frames with the tokens the LRB kept (cyan), the key frame with the HR tokens kept (yellow);
* the decision graphs (rho against delta) of both branches, kept tokens in red;
* the predicted skeleton on the key frame;

and a status line with the kept-token counts and the forward time.

Everything is computed by :meth:`PruningExplorer.compute`, which needs no browser (unit-tested);
:meth:`PruningExplorer.update` sets the widget values, computes and redraws.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ftp_pose.viz.decision_graph import decision_graph_data, plot_decision_graph
from ftp_pose.viz.tokens import HR_KEPT_COLOR, KEPT_COLOR, overlay_kept_tokens

__all__ = ["Explorer", "ExplorerResult", "PruningExplorer", "crop_images", "predicted_joints"]

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

    def kept_label(self) -> str:
        """The short label ``"kept: M_h high-res / M_l low-res tokens"`` (no HR part without the HRB)."""
        if self.num_kept_h is None:
            return f"kept: {self.num_kept_l} low-res tokens"
        return f"kept: {self.num_kept_h} high-res / {self.num_kept_l} low-res tokens"

    def summary(self) -> str:
        """One status line (the counts; the time is appended separately by :meth:`status`)."""
        per = " + ".join(str(v) for v in self.kept_l_per_frame)
        s = f"LRB kept {self.num_kept_l} / {self.num_tokens_l} tokens ({per} per frame)"
        if self.num_kept_h is not None:
            s += f"; HRB kept {self.num_kept_h} / {self.num_tokens_h} tokens"
        return s

    def status(self) -> str:
        return f"{self.summary()}; forward {self.forward_ms:.1f} ms"


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
    from ftp_pose.data import decode_heatmaps, heatmap_to_input

    hm = heatmaps.detach().float().cpu().numpy() if hasattr(heatmaps, "detach") else np.asarray(heatmaps)
    coords, maxvals = decode_heatmaps(hm, refine="dark")
    xy = heatmap_to_input(coords[0], input_size, hm.shape[-2:])
    return np.concatenate([xy, maxvals[0][:, None]], axis=1)


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
                                          tau_scale=float(tau_scale), sample=next(iter(self.samples)))
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
        self.widget = W.VBox([W.HBox([left, self.controls["sample"]]), self.status_label, self.image])

    def _on_change(self, change: dict) -> None:
        if self._busy:
            return
        self.update(**{n: c.value for n, c in self.controls.items()})

    # ------------------------------------------------------------------ logic
    def _configure(self, eps_h: float, eps_l: float, k: int, tau_scale: float) -> None:
        mgfe = self.model.mgfe
        c = self.model.config.embed_dim
        tau = None if tau_scale == 1.0 else float(tau_scale) * (1.0 if self.model.config.dpc_normalize else c)
        prunes = [mgfe.prune_l] + ([mgfe.prune_h] if self.has_hrb else [])
        for p in prunes:
            p.k, p.tau = int(k), tau
        mgfe.prune_l.eps = float(eps_l)
        if self.has_hrb:
            mgfe.prune_h.eps = float(eps_h)

    def compute(self, eps_h: float | None = None, eps_l: float | None = None, k: int | None = None,
                tau_scale: float | None = None, sample: str | None = None, render: bool = True) -> ExplorerResult:
        """Run the model on ``sample`` with these pruning settings (None = keep the current one)."""
        import torch

        st = self.state
        if sample is not None and sample not in self.samples:
            raise KeyError(f"unknown sample {sample!r}; choose one of {list(self.samples)}")
        for name, v in (("eps_h", eps_h), ("eps_l", eps_l), ("k", k), ("tau_scale", tau_scale), ("sample", sample)):
            if v is not None:
                st[name] = v
        if not (1 <= st["eps_h"] and 1 <= st["eps_l"]):
            raise ValueError(f"pruning ratios must be >= 1, got eps_h={st['eps_h']}, eps_l={st['eps_l']}")
        self._configure(st["eps_h"], st["eps_l"], st["k"], st["tau_scale"])
        item = self.samples[st["sample"]]
        clip = item["clip"].unsqueeze(0).to(self.device)
        with torch.no_grad():
            t0 = time.perf_counter()
            heatmaps, info = self.model(clip, return_info=True)
            if clip.device.type == "cuda":
                torch.cuda.synchronize()
            ms = 1000.0 * (time.perf_counter() - t0)
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
            kept_index_l=idx_l, kept_index_h=idx_h)
        if render:
            res.png = self.render_png(item, info, res)
        self.last = res
        return res

    def update(self, **changes: Any) -> ExplorerResult:
        """Set widget values (``eps_h, eps_l, k, tau_scale, sample``), recompute and redraw."""
        unknown = set(changes) - {"eps_h", "eps_l", "k", "tau_scale", "sample"}
        if unknown:
            raise TypeError(f"PruningExplorer.update: unknown setting(s) {sorted(unknown)}")
        self._busy = True
        try:
            for name, v in changes.items():
                if name in self.controls and self.controls[name].value != v:
                    self.controls[name].value = v
        finally:
            self._busy = False
        res = self.compute(**changes, render=True)  # type: ignore[arg-type]
        if self.image is not None:
            self.image.value = res.png
            self.status_label.value = (f"<b>{res.kept_label()}</b> ({res.summary()}); "
                                       f"forward {res.forward_ms:.1f} ms")
        return res

    # ------------------------------------------------------------------ drawing
    def figure(self, item: Mapping[str, Any], info: Mapping[str, Any], res: ExplorerResult) -> Any:
        """The matplotlib figure of one result (2 rows: crops, then graphs and prediction)."""
        import matplotlib.pyplot as plt
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
        import textwrap

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
        plt.close("all")  # nothing of ours is registered with pyplot (Figure()), but keep notebooks clean
        return fig

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
