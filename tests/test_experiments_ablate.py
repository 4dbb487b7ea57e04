"""``python -m ftp_pose ablate --preset quick``: tables, figure, per-config cache and resume."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftp_pose.cli import main
from ftp_pose.experiments import ablate

T2 = ["baseline", "multigrained", "ftp_pose_h6_l6"]
T3 = ["ftp_pose_h1_l1", "ftp_pose_h6_l1", "ftp_pose_h1_l6", "ftp_pose_h6_l6"]   # quick preset: the corners


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ablate")
    figs, cache = root / "figures", root / "cache"
    mp = pytest.MonkeyPatch()
    mp.setenv("FTP_POSE_FIGURES", str(figs))
    try:
        assert main(["ablate", "--table", "2", "3", "--preset", "quick", "--out", str(cache)]) == 0
        results = sorted((cache / "results").glob("*.json"))
        mtimes = {p.name: p.stat().st_mtime_ns for p in results}
        second = {t: ablate.run_ablation(t, "quick", 1, cache) for t in (2, 3)}
    finally:
        mp.undo()
    return dict(figs=figs, cache=cache, results=results, mtimes=mtimes, second=second)


def test_tables_written_with_expected_rows(quick_run: dict) -> None:
    figs = quick_run["figs"]
    for name in ("table2.md", "table2.json", "table3.md", "table3.json", "table3.png"):
        assert (figs / name).is_file() and (figs / name).stat().st_size > 0, name
    t2 = json.loads((figs / "table2.json").read_text())
    t3 = json.loads((figs / "table3.json").read_text())
    assert [r["name"] for r in t2["rows"]] == T2
    assert [r["name"] for r in t3["rows"]] == T3
    for t in (t2, t3):
        assert t["complete"] and t["missing"] == [] and t["seeds"] == [0]
        assert t["device"] and t["preset"] == "quick"
        for r in t["rows"]:
            assert set(ablate.AP_COLUMNS) <= set(r["ap"]) and r["ap"]["Mean"] is not None
            assert r["gflops"] > 0 and r["clips_per_s"] > 0 and r["latency_ms"] > 0 and r["n_seeds"] == 1
    g = {r["name"]: r["gflops"] for r in t2["rows"]}
    assert g["ftp_pose_h6_l6"] < g["multigrained"]          # pruning removes computation
    assert t3["subset"] and len(t3["grid_mean_ap"]["values"]) == 4
    assert t3["grid_mean_ap"]["values"][1][1] is None         # (3, 3) not in the quick grid: n/a
    md2, md3 = (figs / "table2.md").read_text(), (figs / "table3.md").read_text()
    assert "(a) + multi-grained" in md2 and "85.9" in md2 and "Directions" in md2
    assert "n/a" in md3 and "87.4" in md3
    assert set(t2["directions"]) >= {"(a) multigrained > baseline", "(b) ftp_pose eps 6/6 >= multigrained"}


def test_cache_is_reused(quick_run: dict) -> None:
    # 3 (Table II) + 3 (Table III; eps 6/6 is shared) result jsons, one per config and seed
    assert sorted(p.name for p in quick_run["results"]) == sorted(f"{n}_s0.json" for n in set(T2 + T3))
    second = quick_run["second"]
    assert second[2]["ran"] == 0 and second[2]["cached"] == 3
    assert second[3]["ran"] == 0 and second[3]["cached"] == 4
    after = {p.name: p.stat().st_mtime_ns for p in sorted((quick_run["cache"] / "results").glob("*.json"))}
    assert after == quick_run["mtimes"]      # nothing retrained or rewritten


def test_missing_results_give_partial_tables(quick_run: dict, tmp_path: Path) -> None:
    # a cache with only the baseline: tables still written, the rest n/a and listed as missing
    cache = tmp_path / "cache"
    (cache / "results").mkdir(parents=True)
    src = quick_run["cache"] / "results" / "baseline_s0.json"
    (cache / "results" / "baseline_s0.json").write_text(src.read_text())
    res = ablate.write_tables(2, "quick", [0, 1], cache, figures=tmp_path)
    assert not res["complete"] and "baseline_s1" in res["missing"] and "multigrained_s0" in res["missing"]
    rows = {r["name"]: r for r in res["rows"]}
    assert rows["baseline"]["n_seeds"] == 1 and rows["multigrained"]["ap"]["Mean"] is None
    assert res["directions"]["(a) multigrained > baseline"]["holds"] is None
    assert "Missing" in (tmp_path / "table2.md").read_text()


def test_presets_and_grids() -> None:
    assert {"quick", "cpu", "gpu"} <= set(ablate.PRESETS)
    assert ablate.PRESETS["gpu"]["train"]["model"]["backbone"] == "base"
    assert ablate.PRESETS["gpu"]["train"]["data"]["input_size"] == [256, 192]
    assert len(ablate.configurations(3, "full")) == 16 and len(ablate.configurations(3, "cross")) == 7
    with pytest.raises(ValueError):
        ablate.configurations(4)


def test_remeasured_speed_replaces_after_training_numbers(quick_run: dict, tmp_path: Path) -> None:
    sp = ablate.remeasure_speed([2], "quick", quick_run["cache"], rounds=2)
    assert set(sp["configs"]) == set(T2) and all(len(v["clips_per_s_rounds"]) == 2 for v in sp["configs"].values())
    res = ablate.write_tables(2, "quick", [0], quick_run["cache"], figures=tmp_path)
    for r in res["rows"]:
        assert r["clips_per_s"] == sp["configs"][r["name"]]["clips_per_s"] and "interleaved" in r["speed_source"]
        assert r["clips_per_s_after_training"] > 0
