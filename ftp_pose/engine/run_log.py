"""The run folder's ``metrics.csv`` (one row per logged step or validation) and ``curves.png``."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ftp_pose.io import write_text
from ftp_pose.keypoints import AP_GROUPS

#: validation columns, in Table I order (percent)
AP_COLUMNS: tuple[str, ...] = tuple(f"ap_{g.lower()}" for g in AP_GROUPS) + ("ap_mean",)
#: every column of metrics.csv; ``kind`` is "train" (running loss) or "val" (AP after an epoch)
COLUMNS: tuple[str, ...] = ("kind", "epoch", "iter", "lr", "loss") + AP_COLUMNS + ("clips_per_s", "time_s")
#: columns that depend on the machine's speed (left out when two runs are compared)
TIMING_COLUMNS: tuple[str, ...] = ("clips_per_s", "time_s")


def ap_row(table: dict[str, float]) -> dict[str, float]:
    """Map an AP table ``{"Head": .., ..., "Mean": ..}`` to the ``ap_*`` columns."""
    return {f"ap_{k.lower()}": float(v) for k, v in table.items() if f"ap_{k.lower()}" in AP_COLUMNS}


class MetricsLog:
    """Append-only CSV log, rewritten atomically on each append (small files; never half-written)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                self.rows = list(csv.DictReader(f))

    def truncate(self, global_step: int, epoch: int) -> None:
        """Drop rows written after a checkpoint at (``global_step``, ``epoch``): used on resume."""
        keep = []
        for r in self.rows:
            step, ep = int(r["iter"]), int(r["epoch"])
            if r["kind"] == "val" and ep > epoch:
                continue
            if r["kind"] == "train" and step > global_step:
                continue
            keep.append(r)
        self.rows = keep
        self._write()

    def append(self, **row: Any) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown metrics.csv columns: {sorted(unknown)}")
        self.rows.append({k: _fmt(row.get(k, "")) for k in COLUMNS})
        self._write()

    def _write(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows)
        write_text(self.path, buf.getvalue())

    def plot(self, path: str | Path) -> Path:
        """Draw the training loss per iteration and the validation mean AP per epoch to ``path``."""
        # A Figure with its own Agg canvas: no pyplot, so the caller's backend (a notebook's inline
        # backend, say) is never switched and no global figure is left open.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from ftp_pose.io import atomic_write

        train = [r for r in self.rows if r["kind"] == "train" and r["loss"] != ""]
        val = [r for r in self.rows if r["kind"] == "val" and r["ap_mean"] != ""]
        fig = Figure(figsize=(10, 3.6))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 2)
        axes[0].plot([int(r["iter"]) for r in train], [float(r["loss"]) for r in train], lw=1.2)
        axes[0].set(xlabel="iteration", ylabel="heatmap loss (MSE)", title="training loss")
        axes[0].set_yscale("log")
        axes[1].plot([int(r["epoch"]) for r in val], [float(r["ap_mean"]) for r in val], "o-")
        axes[1].set(xlabel="epoch", ylabel="mean AP (%)", title="validation AP")
        for ax in axes:
            ax.grid(alpha=0.3)
        fig.tight_layout()
        path = Path(path)
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format=path.suffix.lstrip(".") or "png"))
        return path


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.8g}"
    return v
