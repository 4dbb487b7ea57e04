"""Statistics of the ablation: paired bootstrap intervals over seeds and validation videos, timing spread.

A comparison "A vs B" pairs the two configurations on the same seed and the same validation video:
``d[s, v] = AP_A(s, v) - AP_B(s, v)`` (per-video mean AP, :mod:`ftp_pose.experiments.evalsets`).
The estimate is the mean of ``d``; its 95 % interval is a two-level percentile bootstrap: each
replicate draws the seeds with replacement, then the videos with replacement, and averages
``d`` over the drawn rows and columns (seeds and videos are both sources of variation; videos are
shared by all seeds, so they are drawn once per replicate). A direction *reproduces* only when
its interval lies entirely on its side of 0.
"""
from __future__ import annotations

import statistics
from typing import Any, Sequence

import numpy as np

__all__ = ["paired_bootstrap", "difference_matrix", "verdict", "timing_summary", "N_BOOT"]

N_BOOT = 4000


def paired_bootstrap(d: Any, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Mean of ``d`` (``S x V``: seeds x videos, no NaN) and its percentile bootstrap interval.

    Replicate b: ``rows = rng.integers(0, S, S)``, then ``cols = rng.integers(0, V, V)``, statistic
    ``d[rows][:, cols].mean()``; the interval is ``np.percentile`` of the replicates at
    ``(1 - level) / 2`` and ``(1 + level) / 2`` (linear interpolation). ``rng`` is
    ``np.random.default_rng(seed)``.
    """
    d = np.asarray(d, float)
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"paired_bootstrap expects a non-empty seeds x videos matrix, got shape {d.shape}")
    s, v = d.shape
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        rows = rng.integers(0, s, s)
        cols = rng.integers(0, v, v)
        reps[b] = d[rows][:, cols].mean()
    lo, hi = np.percentile(reps, [50 * (1 - level), 50 * (1 + level)])
    return {"delta": round(float(d.mean()), 3), "ci95": [round(float(lo), 3), round(float(hi), 3)],
            "n_seeds": s, "n_videos": v, "n_boot": n_boot, "boot_seed": seed}


def difference_matrix(a: dict[int, dict[str, float | None]], b: dict[int, dict[str, float | None]]) -> np.ndarray:
    """``S x V`` paired differences from ``{seed: {video: AP}}`` of two configurations.

    Uses the seeds both have, and the videos with a value in every one of those runs of both (a
    video without a labelled joint has no AP). Empty (0 x 0) when nothing pairs.
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return np.zeros((0, 0))
    vids = sorted(set.intersection(*[{k for k, x in r[s].items() if x is not None} for s in seeds for r in (a, b)]))
    return np.array([[a[s][v] - b[s][v] for v in vids] for s in seeds], float) if vids else np.zeros((0, 0))


def verdict(ci: Sequence[float] | None, direction: str) -> str | None:
    """``"reproduces"`` when the interval excludes 0 on the paper's side (``direction`` ``">"`` or
    ``"<"``), ``"opposite"`` when it excludes 0 on the other side, else ``"undecided"``."""
    if ci is None:
        return None
    lo, hi = ci
    if lo > 0:
        return "reproduces" if direction == ">" else "opposite"
    if hi < 0:
        return "reproduces" if direction == "<" else "opposite"
    return "undecided"


def timing_summary(rounds: Sequence[float]) -> dict[str, Any]:
    """Median of interleaved timing rounds with its spread (min, max and the quartiles)."""
    x = [float(r) for r in rounds]
    if not x:
        return {"median": None}
    q1, q3 = (np.percentile(x, [25, 75]) if len(x) > 1 else (x[0], x[0]))
    return {"median": round(statistics.median(x), 3), "q1": round(float(q1), 3), "q3": round(float(q3), 3),
            "min": round(min(x), 3), "max": round(max(x), 3), "rounds": len(x)}
