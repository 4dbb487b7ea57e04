"""Tables II and III of the ablation, derived only from the per-run jsons (:mod:`ftp_pose.experiments.runs`).

Writes ``table2.{md,json,png}`` and ``table3.{md,json,png}``. Missing runs are ``n/a`` and listed under
``missing``; the comparisons use what pairs (the seeds both sides have) and say how many seeds.
"""
from __future__ import annotations

import math
import statistics
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ftp_pose.experiments import stats
from ftp_pose.experiments.runs import CONTROLS, EPS, EVAL_VERSION, SWEEP_SOURCE
from ftp_pose.io import read_json, write_json, write_text

#: a comparison gets a verdict only with at least this many paired seeds
MIN_SEEDS = 3
AP_COLUMNS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")
LABELS = {"baseline": "baseline", "multigrained": "(a) + multi-grained", "ftp_pose_h6_l6": "(b) + pruning, eps 6/6"}
MEASURE = ("per-video mean AP over labelled joints (PCKh@0.5, ground-truth boxes), paired by seed and video; "
           "95 % two-level percentile bootstrap over seeds and videos")


def _load(path: Path, rh: str) -> dict | None:
    if not path.is_file():
        return None
    r = read_json(path)
    return r if r.get("recipe_hash") == rh and r.get("eval_version") == EVAL_VERSION else None


def _mean(vals: list[float]) -> float | None:
    vals = [v for v in vals if v is not None]
    return round(statistics.fmean(vals), 3) if vals else None


def _std(vals: list[float]) -> float | None:
    vals = [v for v in vals if v is not None]
    return round(statistics.stdev(vals), 3) if len(vals) > 1 else (0.0 if vals else None)


def _fmt(v: Any, f: str = ".1f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, f)


def _ci(c: dict | None) -> str:
    if not c or c.get("delta") is None:
        return "n/a"
    return f"{c['delta']:+.2f} [{c['ci95'][0]:+.2f}, {c['ci95'][1]:+.2f}]"


def _compare(label: str, a: dict[int, dict], b: dict[int, dict], direction: str = ">", seed: int = 0) -> dict:
    """Paired comparison of two ``{seed: {video: AP}}`` sets (see :mod:`ftp_pose.experiments.stats`)."""
    d = stats.difference_matrix(a, b)
    out: dict[str, Any] = {"comparison": label, "paper_direction": direction, "measure": "per-video AP difference"}
    if d.size == 0:
        return {**out, "delta": None, "ci95": None, "verdict": None, "n_seeds": 0, "n_videos": 0}
    res = stats.paired_bootstrap(d, seed=seed)
    # with fewer than MIN_SEEDS seeds the interval covers the videos but hardly the training seed
    verdict = stats.verdict(res["ci95"], direction) if res["n_seeds"] >= MIN_SEEDS else "too few seeds"
    return {**out, **res, "verdict": verdict}


def _level(per_video: dict[int, dict]) -> dict | None:
    """Mean per-video AP of one configuration with its bootstrap interval (for the bar chart)."""
    seeds = sorted(per_video)
    if not seeds:
        return None
    vids = sorted(set.intersection(*[{k for k, v in per_video[s].items() if v is not None} for s in seeds]))
    if not vids:
        return None
    res = stats.paired_bootstrap(np.array([[per_video[s][v] for v in vids] for s in seeds]))
    return {"mean": res["delta"], "ci95": res["ci95"], "n_seeds": len(seeds), "n_videos": len(vids)}


def _header(table: int, preset_name: str, preset: dict, rh: str, seeds: list[int], results: Path,
            records: list[dict], missing: list[str]) -> dict[str, Any]:
    devs = sorted({f"{r['device']} ({r['threads']} thread{'s' if r['threads'] != 1 else ''})" for r in records})
    return {"table": table, "preset": preset_name, "preset_note": preset["note"], "recipe_hash": rh,
            "seeds": seeds, "device": "; ".join(devs) or "n/a", "missing": missing, "complete": not missing,
            "results_dir": _shown(results), "recipe": {k: preset.get(k) for k in ("synthetic", "train", "bench")},
            "measure_note": MEASURE}


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (no machine-specific prefix in committed files)."""
    from ftp_pose.paths import REPO_ROOT

    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def _row(conf: dict, recs: list[dict]) -> dict[str, Any]:
    row: dict[str, Any] = {k: conf[k] for k in ("name", "variant", "eps_h", "eps_l")}
    row.update(seeds=[r["seed"] for r in recs], n_seeds=len(recs), map_per_seed=[r["ap"]["Mean"] for r in recs])
    row["ap"] = {c: _mean([r["ap"].get(c) for r in recs]) for c in AP_COLUMNS}
    row["ap_std"] = {c: _std([r["ap"].get(c) for r in recs]) for c in AP_COLUMNS}
    row["subsets"] = {k: _mean([r["subsets"][k]["mean"] for r in recs]) for k in ("all", "occluded", "blurred", "clean")}
    row["subset_joints"] = {k: (recs[0]["subsets"][k]["n"] if recs else None) for k in ("all", "occluded", "blurred", "clean")}
    for k in ("params_m", "gflops", "latency_ms", "clips_per_s", "train_s"):
        row[k] = _mean([r.get(k) for r in recs])
    row["train_s_per_seed"] = [r["train_s"] for r in recs]
    row["epochs_per_seed"] = [r["epochs_run"] for r in recs]
    row["stopped_on_plateau_per_seed"] = [r["stopped_on_plateau"] for r in recs]
    return row


def _speed(results: Path, rh: str) -> dict:
    p = results / "speed.json"
    s = read_json(p) if p.is_file() else {}
    return s if s.get("recipe_hash") == rh else {}


def write_table2(preset_name: str, preset: dict, rh: str, seeds: list[int], results: Path, figures: Path,
                 confs: list[dict]) -> dict[str, Any]:
    recs: dict[str, list[dict]] = {}
    missing: list[str] = []
    for c in confs:
        recs[c["name"]] = []
        for s in seeds:
            r = _load(results / f"{c['name']}_s{s}.json", rh)
            (recs[c["name"]].append(r) if r else missing.append(f"{c['name']}_s{s}"))
    pv = {n: {r["seed"]: r["ap_per_video"] for r in rs} for n, rs in recs.items()}
    rows = {c["name"]: _row(c, recs[c["name"]]) for c in confs}
    speed = _speed(results, rh)
    for n, r in rows.items():
        sp = speed.get("configs", {}).get(n)
        r["speed_source"] = "after training (mean over seeds; shared machine: noisy)"
        if sp:
            r["clips_per_s_after_training"], r["latency_ms_after_training"] = r["clips_per_s"], r["latency_ms"]
            r["clips_per_s"], r["latency_ms"] = sp["clips_per_s"]["median"], sp["latency_ms"]["median"]
            r["clips_per_s_spread"], r["latency_ms_spread"] = sp["clips_per_s"], sp["latency_ms"]
            r["speed_source"] = f"interleaved re-timing, median of {speed['rounds']} rounds"
        r["level"] = _level(pv[n])
    # controls: {control: {config: {...}}}
    ctrl: dict[str, dict[str, Any]] = {}
    ctrl_pv: dict[tuple[str, str], dict[int, dict]] = {}
    for base, names in CONTROLS.items():
        for v in names:
            got = []
            for s in seeds:
                r = _load(results / "controls" / f"{base}_s{s}.json", rh)
                if r is None:
                    if f"controls/{base}_s{s}" not in missing:
                        missing.append(f"controls/{base}_s{s}")
                    continue
                got.append((s, r["controls"][v]))
            ctrl_pv[(v, base)] = {s: g["ap_per_video"] for s, g in got}
            ctrl.setdefault(v, {})[base] = {
                "n_seeds": len(got), "map_per_seed": [g["ap"]["Mean"] for _, g in got],
                "map": _mean([g["ap"]["Mean"] for _, g in got]),
                "subsets": {k: _mean([g["subsets"][k]["mean"] for _, g in got]) for k in ("all", "occluded", "blurred", "clean")},
                "level": _level(ctrl_pv[(v, base)]),
                "trained_minus_control": _compare(f"{base} as trained - {v}", pv.get(base, {}), ctrl_pv[(v, base)])}
    comparisons = [
        _compare("(a) multigrained - baseline", pv["multigrained"], pv["baseline"]),
        _compare("(b) ftp_pose 6/6 - (a) multigrained", pv["ftp_pose_h6_l6"], pv["multigrained"]),
        _compare("(b) ftp_pose 6/6 - baseline", pv["ftp_pose_h6_l6"], pv["baseline"]),
        _compare("(b) - (b) key frame only [context]", pv["ftp_pose_h6_l6"], ctrl_pv[("key_frame_only", "ftp_pose_h6_l6")]),
        _compare("(a) - (a) key frame only [context]", pv["multigrained"], ctrl_pv[("key_frame_only", "multigrained")]),
        _compare("(b) DPC-KNN - random pruning, same eps", pv["ftp_pose_h6_l6"], ctrl_pv[("random_pruning", "ftp_pose_h6_l6")]),
        _compare("(b) eps 6/6 - same weights at eps 1/1", pv["ftp_pose_h6_l6"], ctrl_pv[("no_pruning", "ftp_pose_h6_l6")], ">="),
    ]
    sp = [rows[n]["clips_per_s"] for n in ("multigrained", "ftp_pose_h6_l6")]
    speed_check = {"(b) faster than (a)": None if None in sp else sp[1] > sp[0],
                   "ratio": None if None in sp else round(sp[1] / sp[0], 3), "source": rows["ftp_pose_h6_l6"]["speed_source"]}
    from ftp_pose.viz import paper_tables as paper

    names = {"baseline": "baseline", "multigrained": "multigrained", "ftp_pose_h6_l6": "ftp_pose"}
    for n, r in rows.items():
        r["paper"] = paper.TABLE_II[names[n]]
    all_recs = [r for rs in recs.values() for r in rs]
    shares = next((r.get("perturbation_shares") for r in all_recs if r.get("perturbation_shares")), None)
    result = {**_header(2, preset_name, preset, rh, seeds, results, all_recs, missing),
              "perturbation_shares": shares, "rows": list(rows.values()), "controls": ctrl,
              "comparisons": comparisons, "speed": speed_check, "paper_source": paper.CITATION}
    lines = [f"# Table II by experiment ({preset_name} preset)", "",
             f"Device: {result['device']}. Seeds requested: {seeds}. Recipe {rh}: {preset['note']}.", ""]
    if shares:
        lines += [f"Validation set: {shares['persons']} scored person instances, {shares['joints']} scored joints; "
                  f"one-frame occlusion touches {100 * shares['persons_occluded']:.0f} % of the persons "
                  f"({100 * shares['joints_occluded']:.1f} % of the joints), one-frame blur "
                  f"{100 * shares['persons_blurred']:.0f} % (either: {100 * shares['persons_touched']:.0f} %).", ""]
    lines += ["| configuration | paper mAP | paper FPS | params (M) | GFLOPs | " + " | ".join(AP_COLUMNS[:-1])
              + " | mAP (± std over seeds) | seeds | epochs | AP occluded | AP blurred | clips/s |",
              "|---|" + "---:|" * (len(AP_COLUMNS) + 9)]
    for n, r in rows.items():
        m, s = r["ap"]["Mean"], r["ap_std"]["Mean"]
        lines.append(f"| {LABELS[n]} | {r['paper']['map']:.1f} | {r['paper']['fps']:.0f} | {_fmt(r['params_m'], '.3f')} | "
                     f"{_fmt(r['gflops'], '.3f')} | " + " | ".join(_fmt(r["ap"][c]) for c in AP_COLUMNS[:-1])
                     + f" | {_fmt(m)}{'' if not s else f' ± {s:.1f}'} | {r['n_seeds']} | "
                     f"{', '.join(map(str, r['epochs_per_seed'])) or 'n/a'} | {_fmt(r['subsets']['occluded'])} | "
                     f"{_fmt(r['subsets']['blurred'])} | {_fmt(r['clips_per_s'])} |")
    lines += ["", "Per seed mAP: " + "; ".join(f"{n}: " + (", ".join(_fmt(v) for v in r["map_per_seed"]) or "n/a")
                                             for n, r in rows.items()), "",
              "Controls on the trained weights (mAP, mean over seeds; AP on occluded / blurred joints):", "",
              "| control | on | seeds | mAP | AP occluded | AP blurred |", "|---|---|---:|---:|---:|---:|"]
    for v, per in ctrl.items():
        for base, c in per.items():
            lines.append(f"| {v} | {base} | {c['n_seeds']} | {_fmt(c['map'])} | {_fmt(c['subsets']['occluded'])} | "
                         f"{_fmt(c['subsets']['blurred'])} |")
    lines += ["", f"Comparisons ({MEASURE}); a direction reproduces only when its interval excludes 0, "
              f"judged from {MIN_SEEDS} paired seeds on:", "",
              "| comparison | difference [95 % CI] | seeds | videos | verdict |", "|---|---:|---:|---:|---|"]
    for c in comparisons:
        lines.append(f"| {c['comparison']} | {_ci(c)} | {c['n_seeds']} | {c['n_videos']} | {c['verdict'] or 'n/a'} |")
    lines += ["", f"Speed: (b) vs (a) clips/s ratio {_fmt(speed_check['ratio'], '.2f')} ({speed_check['source']})."]
    if missing:
        lines += ["", f"Missing (n/a above; partial): {', '.join(missing)}."]
    write_text(figures / "table2.md", "\n".join(lines) + "\n")
    write_json(figures / "table2.json", result)
    _bars(result, figures / "table2.png")
    return result


def _bars(result: dict, path: Path) -> None:
    """Bars of the mean per-video AP with their 95 % bootstrap intervals: Table II rows and controls."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ftp_pose.io import atomic_write

    items = [(LABELS[r["name"]], r["level"]) for r in result["rows"]]
    for v, per in result["controls"].items():
        for base, c in per.items():
            items.append((f"{'(b)' if base == 'ftp_pose_h6_l6' else '(a)'} {v.replace('_', ' ')}", c["level"]))
    fig = Figure(figsize=(1.5 + 1.1 * len(items), 4.8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    xs = np.arange(len(items))
    means = [lv["mean"] if lv else np.nan for _, lv in items]
    err = np.array([[lv["mean"] - lv["ci95"][0], lv["ci95"][1] - lv["mean"]] if lv else [0, 0] for _, lv in items]).T
    colors = ["C0"] * len(result["rows"]) + ["C7"] * (len(items) - len(result["rows"]))
    ax.bar(xs, means, yerr=err, capsize=4, color=colors)
    for x, (_, lv) in zip(xs, items):
        ax.text(x, 0.5, f"n={lv['n_seeds']}" if lv else "n/a", ha="center", va="bottom", fontsize=7, color="w" if lv else "k")
    ax.set_xticks(xs, [t for t, _ in items], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean per-video AP (labelled joints)")
    ax.set_title(f"Table II ({result['preset']}): mean over seeds and val videos, 95 % bootstrap CI\n{result['device']}",
                 fontsize=9)
    fig.subplots_adjust(left=0.9 / fig.get_figwidth(), right=0.98, bottom=0.32, top=0.86)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def write_table3(preset_name: str, preset: dict, rh: str, seeds: list[int], results: Path, figures: Path,
                 trained_cells: list[tuple[int, int]], trained_seeds: list[int]) -> dict[str, Any]:
    from ftp_pose.viz import paper_tables as paper

    missing: list[str] = []
    sweeps = []
    for s in seeds:
        r = _load(results / "test_time" / f"{SWEEP_SOURCE}_s{s}.json", rh)
        (sweeps.append(r) if r else missing.append(f"test_time/{SWEEP_SOURCE}_s{s}"))
    trained: dict[tuple[int, int], list[dict]] = {}
    for eh, el in trained_cells:
        trained[(eh, el)] = []
        for s in trained_seeds:
            r = _load(results / f"ftp_pose_h{eh}_l{el}_s{s}.json", rh)
            (trained[(eh, el)].append(r) if r else missing.append(f"ftp_pose_h{eh}_l{el}_s{s}"))
    tt_pv = {(eh, el): {r["seed"]: r["cells"][f"h{eh}_l{el}"]["ap_per_video"] for r in sweeps} for el in EPS for eh in EPS}
    tr_pv = {cell: {r["seed"]: r["ap_per_video"] for r in rs} for cell, rs in trained.items()}
    cells = []
    for el in EPS:
        for eh in EPS:
            tt = [r["cells"][f"h{eh}_l{el}"] for r in sweeps]
            tr = trained.get((eh, el), [])
            test_time = {"map": _mean([c["ap"]["Mean"] for c in tt]), "map_per_seed": [c["ap"]["Mean"] for c in tt],
                         "n_seeds": len(tt), "gflops": _mean([c["gflops"] for c in tt]),
                         "subsets": {k: _mean([c["subsets"][k]["mean"] for c in tt]) for k in ("occluded", "blurred")},
                         "vs_6_6": None if (eh, el) == (6, 6) else
                         _compare(f"({eh}, {el}) - (6, 6), test time", tt_pv[(eh, el)], tt_pv[(6, 6)], "<")}
            tr_d = None if not tr else {"map": _mean([r["ap"]["Mean"] for r in tr]),
                                        "map_per_seed": [r["ap"]["Mean"] for r in tr], "n_seeds": len(tr),
                                        "gflops": _mean([r["gflops"] for r in tr]),
                                        # the cell's own models against the trained (6, 6) models, same seeds
                                        "vs_6_6": None if (eh, el) == (6, 6) or (6, 6) not in tr_pv else
                                        _compare(f"({eh}, {el}) - (6, 6), each trained", tr_pv[(eh, el)],
                                                 tr_pv[(6, 6)], "<")}
            src = "trained" if tr_d else "test_time"
            cells.append({"eps_h": eh, "eps_l": el, "source": src,
                          "map": (tr_d or test_time)["map"], "paper_map": paper.TABLE_III[(eh, el)],
                          "test_time": test_time, "trained": tr_d})
    grid = lambda f: [[f(next(c for c in cells if c["eps_h"] == eh and c["eps_l"] == el)) for eh in EPS] for el in EPS]  # noqa: E731
    tt_grid = grid(lambda c: c["test_time"]["map"])
    tr_grid = grid(lambda c: c["trained"]["map"] if c["trained"] else None)
    measured = {(c["eps_h"], c["eps_l"]): c["test_time"]["map"] for c in cells if c["test_time"]["map"] is not None}
    ranked = sorted(measured, key=measured.get, reverse=True)
    all_recs = sweeps + [r for rs in trained.values() for r in rs]
    result = {**_header(3, preset_name, preset, rh, seeds, results, all_recs, missing),
              "trained_seeds": trained_seeds, "cells": cells,
              "grid_rows_eps_l": list(EPS), "grid_cols_eps_h": list(EPS),
              "test_time_grid": tt_grid, "trained_grid": tr_grid, "paper_grid": paper.table_iii_grid(),
              "best_test_time_cell": list(ranked[0]) if ranked else None,
              "rank_of_6_6_test_time": ranked.index((6, 6)) + 1 if (6, 6) in measured else None,
              "paper_source": paper.CITATION}
    lines = [f"# Table III by experiment ({preset_name} preset)", "",
             f"Device: {result['device']}. Recipe {rh}: {preset['note']}.", "",
             f"Test time: the trained eps 6/6 models (seeds {[r['seed'] for r in sweeps] or 'none yet'}) run at every "
             "(eps_h, eps_l) with unchanged weights (source `test_time`). Trained: one model per cell "
             f"(cells {trained_cells}, seeds {trained_seeds}; source `trained`).", "",
             "mAP at test time (rows eps_l = LRB ratio, columns eps_h = HRB ratio):", "",
             paper.markdown_table(["LRB \\ HRB", *map(str, EPS)], [[str(el), *tt_grid[i]] for i, el in enumerate(EPS)]),
             "", "mAP trained per cell:", "",
             paper.markdown_table(["LRB \\ HRB", *map(str, EPS)], [[str(el), *tr_grid[i]] for i, el in enumerate(EPS)]),
             "", "Paper (PoseTrack2017 val mAP):", "",
             paper.markdown_table(["LRB \\ HRB", *map(str, EPS)], [[str(el), *paper.table_iii_grid()[i]] for i, el in enumerate(EPS)]),
             "", f"Each cell at test time minus (6, 6) at test time, on the same weights ({MEASURE}); the "
             "trained column is the cell's own model (seeds above), not part of the difference:", "",
             "| eps_h | eps_l | source | mAP test time | mAP trained | GFLOPs | test time minus (6, 6) [95 % CI] "
             "| verdict (paper: below) |",
             "|---:|---:|---|---:|---:|---:|---:|---|"]
    for c in cells:
        v = c["test_time"]["vs_6_6"]
        lines.append(f"| {c['eps_h']} | {c['eps_l']} | {c['source']} | {_fmt(c['test_time']['map'])} | "
                     f"{_fmt(c['trained']['map']) if c['trained'] else '—'} | {_fmt(c['test_time']['gflops'], '.3f')} | "
                     f"{_ci(v) if v else '—'} | {(v or {}).get('verdict') or ('—' if not v else 'n/a')} |")
    lines += ["", f"Best test-time cell: {result['best_test_time_cell'] or 'n/a'} (paper: (6, 6)); (6, 6) ranks "
              f"{result['rank_of_6_6_test_time'] or 'n/a'} of {len(measured)}."]
    trained_rows = [c for c in cells if c["trained"] and c["trained"]["vs_6_6"]]
    if trained_rows:
        lines += ["", f"Trained per cell: each cell's own models minus the trained (6, 6) models ({MEASURE}; "
                  f"seeds {trained_seeds}):", "",
                  "| eps_h | eps_l | mAP trained | seeds | trained minus (6, 6) [95 % CI] | verdict (paper: below) |",
                  "|---:|---:|---:|---:|---:|---|"]
        for c in trained_rows:
            v = c["trained"]["vs_6_6"]
            lines.append(f"| {c['eps_h']} | {c['eps_l']} | {_fmt(c['trained']['map'])} | {c['trained']['n_seeds']} | "
                         f"{_ci(v)} | {v.get('verdict') or 'n/a'} |")
    if missing:
        lines += ["", f"Missing (partial): {', '.join(missing)}."]
    with warnings.catch_warnings():   # a grid with nothing measured yet: all n/a
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        paper.save_eps_grids([(tt_grid, f"ours, test time ({len(sweeps)} seed{'s' if len(sweeps) != 1 else ''})"),
                              (tr_grid, "ours, trained per cell"),
                              (paper.table_iii_grid(), "paper (PoseTrack2017 val)")],
                             figures / "table3.png", suptitle=f"Table III: mAP over eps_h x eps_l; {result['device']}")
    write_text(figures / "table3.md", "\n".join(lines) + "\n")
    write_json(figures / "table3.json", result)
    return result
