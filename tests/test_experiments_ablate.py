"""The ablation machinery: statistics against independent references, the subset AP against the poseval
port, the benchmark's perturbation options, the controls, and ``python -m ftp_pose ablate --preset quick``
(json schema, resume from the per-run jsons, partial tables)."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch

from _helpers import person_keypoints
from ftp_pose.cli import main
from ftp_pose.data.synthetic import generate_synthetic_posetrack, perturbation_shares
from ftp_pose.experiments import ablate, controls, evalsets, stats
from ftp_pose.keypoints import EVAL_JOINTS, NUM_JOINTS
from ftp_pose.metrics import evaluate_ap

T2 = ["baseline", "multigrained", "ftp_pose_h6_l6"]


# ----------------------------------------------------------------------------- statistics

@pytest.mark.parametrize("d", [[[0.0, 2.0]], [[1.0, 1.0], [3.0, 3.0]]], ids=["videos", "seeds"])
def test_bootstrap_interval_by_hand(d: list) -> None:
    # by hand: a replicate mean is 0, 1 or 2 (videos) / 1, 2 or 3 (seeds) with chances 1/4, 1/2, 1/4,
    # so with 4000 replicates the 2.5 % and 97.5 % percentiles are the two extremes
    res = stats.paired_bootstrap(d, n_boot=4000, seed=3)
    lo, hi = min(min(r) for r in d), max(max(r) for r in d)
    assert res["delta"] == pytest.approx(np.mean(d)) and res["ci95"] == [lo, hi]
    assert res["n_seeds"] == len(d) and res["n_videos"] == len(d[0])


def test_bootstrap_matches_normal_theory_and_is_seeded() -> None:
    # one seed, 400 videos of N(0.7, 1): the interval is mean +- 1.96 / sqrt(400) (independent reference)
    x = np.random.default_rng(0).normal(0.7, 1.0, size=(1, 400))
    res = stats.paired_bootstrap(x, n_boot=3000, seed=1)
    half = 1.96 * x.std(ddof=1) / 20
    assert res["ci95"][0] == pytest.approx(x.mean() - half, abs=0.025)
    assert res["ci95"][1] == pytest.approx(x.mean() + half, abs=0.025)
    assert stats.paired_bootstrap(x, n_boot=500, seed=1) == stats.paired_bootstrap(x, n_boot=500, seed=1)
    with pytest.raises(ValueError):
        stats.paired_bootstrap(np.zeros(3))


def test_difference_matrix_pairs_seeds_and_videos() -> None:
    a = {0: {"v1": 10.0, "v2": 20.0, "v3": None}, 1: {"v1": 12.0, "v2": 22.0, "v3": 5.0}, 2: {"v1": 1.0}}
    b = {0: {"v1": 8.0, "v2": 25.0, "v3": 1.0}, 1: {"v1": 10.0, "v2": 20.0, "v3": 2.0}}
    d = stats.difference_matrix(a, b)   # seeds 0, 1 (2 is not in b); v3 has no AP in a's seed 0
    assert d.tolist() == [[2.0, -5.0], [2.0, 2.0]]
    assert stats.difference_matrix(a, {}).size == 0


def test_verdict_and_timing_summary() -> None:
    assert stats.verdict([0.1, 2.0], ">") == "reproduces" and stats.verdict([-2.0, -0.1], ">") == "opposite"
    assert stats.verdict([-0.1, 2.0], ">") == "undecided" and stats.verdict([-2.0, -0.1], "<") == "reproduces"
    assert stats.verdict(None, ">") is None
    x = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0]
    t = stats.timing_summary(x)
    assert t["median"] == statistics.median(x) and (t["q1"], t["q3"]) == tuple(np.percentile(x, [25, 75]))
    assert (t["min"], t["max"], t["rounds"]) == (1.0, 10.0, 6)


# ----------------------------------------------------------------------------- subset AP

def test_records_ap_equals_poseval_when_every_joint_is_labelled() -> None:
    rng = np.random.default_rng(0)
    images, anns, preds = [], [], []
    for f in range(6):
        iid = 10000000000 + 500001 * 10000 + f
        images.append({"id": iid, "file_name": f"images/val/500001/{f:06d}.jpg", "vid_id": "500001",
                       "frame_id": iid, "nframes": 6, "is_labeled": True})
        for k, x0 in enumerate((0.0, 400.0)):
            kp = person_keypoints(x0)
            for j in (3, 4):  # ears labelled too, so no predicted joint lacks a ground truth
                kp[j] = (x0 + 200, 10 + 5 * j, 1)
            anns.append({"image_id": iid, "track_id": k, "keypoints": kp.reshape(-1).tolist(),
                         "bbox_head": [x0, 0, 40, 40], "perturbation": {"occluded": [9] if f % 2 else [],
                                                                        "blurred": f == 3}})
            pk = kp.copy()
            pk[:, :2] += rng.normal(0, 12, size=(NUM_JOINTS, 2))   # some joints beyond 0.5 x 0.6 x 56.6 px
            pk[:, 2] = rng.uniform(0.1, 1.0, NUM_JOINTS)
            preds.append({"image_id": iid, "track_id": k, "keypoints": pk.tolist()})
    gt = {"images": images, "annotations": anns, "categories": []}
    pdoc = {"images": images, "annotations": [
        {"image_id": p["image_id"], "track_id": p["track_id"], "keypoints": [c for r in p["keypoints"] for c in (r[0], r[1], 1)],
         "scores": [r[2] for r in p["keypoints"]]} for p in preds], "categories": []}
    ref = evaluate_ap(gt, pdoc)
    rec = evalsets.joint_records(preds, gt)
    assert len(rec["score"]) == 12 * len(EVAL_JOINTS)
    assert evalsets.records_ap(rec)["mean"] == pytest.approx(ref.table["Mean"], abs=1e-9)
    sub = evalsets.subset_ap(rec)
    assert sub["occluded"]["n"] == 6 and sub["blurred"]["n"] == 2 * len(EVAL_JOINTS)
    assert sub["clean"]["n"] == len(rec["score"]) - 6 - 2 * len(EVAL_JOINTS) + 2   # frame 3: both blurred and occluded
    # occluded subset = wrist records of odd frames, by hand
    m = rec["occluded"]
    order = np.argsort(-rec["score"][m])
    tp = np.cumsum(rec["correct"][m][order])
    from ftp_pose.metrics.posetrack_ap import voc_ap
    assert sub["occluded"]["mean"] == pytest.approx(100 * voc_ap(tp / 6, tp / np.arange(1, 7)))
    assert list(evalsets.per_video_ap(rec)) == ["500001"]


# ----------------------------------------------------------------------------- benchmark options

def test_perturbation_options(tmp_path: Path) -> None:
    kw = dict(n_videos=4, n_val_videos=0, n_frames=10, size=(160, 120), people_per_frame=(1, 1), progress=False,
              side_cue="view", distractors=2)
    plain = generate_synthetic_posetrack(tmp_path / "a", **kw)["train"]
    explicit = generate_synthetic_posetrack(tmp_path / "b", person_occlusion=0.0, limb_ends=1.0, **kw)["train"]
    assert plain.read_bytes() == explicit.read_bytes()
    assert "perturbation" not in plain.read_text()
    doc = json.loads(generate_synthetic_posetrack(tmp_path / "c", person_occlusion=0.6, limb_ends=2.0,
                                                  **kw)["train"].read_text())
    hits = {a["image_id"]: bool(a["perturbation"]["occluded"]) for a in doc["annotations"]}   # one person a video
    assert sum(hits.values()) >= 0.25 * len(hits)
    assert not any(h and hits.get(i + 1) for i, h in hits.items())   # never two consecutive frames
    for a in doc["annotations"]:                                      # covered joints keep their label
        kp = np.asarray(a["keypoints"]).reshape(NUM_JOINTS, 3)
        assert all(kp[q, 2] == 1 for q in a["perturbation"]["occluded"])
    # the default stream is untouched by the new options: same labels, same people
    assert [a["keypoints"] for a in doc["annotations"]] == [a["keypoints"] for a in json.loads(plain.read_text())["annotations"]]
    with pytest.raises(ValueError):
        generate_synthetic_posetrack(tmp_path / "d", limb_ends=0.5, **kw)


def test_perturbation_shares_by_hand() -> None:
    kp = person_keypoints(0.0)
    kp2 = kp.copy()
    kp2[9] = 0   # wrist unlabelled
    doc = {"annotations": [
        {"keypoints": kp.reshape(-1).tolist(), "perturbation": {"occluded": [9, 3], "blurred": False}},
        {"keypoints": kp2.reshape(-1).tolist(), "perturbation": {"occluded": [9], "blurred": True}},
        {"keypoints": kp.reshape(-1).tolist()},
        {"keypoints": [0] * 51}]}
    s = perturbation_shares(doc)
    n = len(EVAL_JOINTS)
    # ear 3 is not evaluated and the second person's wrist is unlabelled: one occluded scored joint
    assert s["persons"] == 3 and s["joints"] == 3 * n - 1
    assert s["persons_occluded"] == round(1 / 3, 4) and s["persons_blurred"] == round(1 / 3, 4)
    assert s["persons_touched"] == round(2 / 3, 4)
    assert s["joints_occluded"] == round(1 / (3 * n - 1), 4) and s["joints_blurred"] == round((n - 1) / (3 * n - 1), 4)


# ----------------------------------------------------------------------------- controls

def test_key_frame_only_and_random_pruning() -> None:
    from ftp_pose.models import build_model

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, clips):
            seen.append(clips.clone())
            return clips.sum()

    clips = torch.randn(2, 3, 3, 4, 4)
    controls.KeyFrameOnly(Probe())(clips)
    assert all(torch.equal(seen[0][:, t], clips[:, 1]) for t in range(3))

    model = build_model("ftp_pose", backbone="tiny", embed_dim=32, num_heads=2, depth=1, lrb_depth=1,
                        refine_depth=1, img_size=(64, 48), eps_h=6, eps_l=6).eval()
    x = torch.randn(2, 3, 3, 64, 48)
    _, info = model(x, return_info=True)
    with controls.random_pruning(model, seed=0):
        _, rinfo = model(x, return_info=True)
    _, again = model(x, return_info=True)
    assert rinfo["kept_index_h"].shape == info["kept_index_h"].shape                 # same number kept
    assert not torch.equal(rinfo["kept_index_h"], info["kept_index_h"])               # another choice
    assert torch.equal(again["kept_index_h"], info["kept_index_h"])                   # DPC restored
    assert type(model.mgfe.prune_h).__name__ == "DPCPruning"


# ----------------------------------------------------------------------------- the quick preset, end to end

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ablate")
    figs, cache = root / "figures", root / "cache"
    mp = pytest.MonkeyPatch()
    mp.setenv("FTP_POSE_FIGURES", str(figs))
    try:
        assert main(["ablate", "--table", "2", "3", "--preset", "quick", "--seeds", "1", "--grid", "center",
                     "--out", str(cache)]) == 0
        results = figs / "ablation" / "quick"
        files = sorted(p.relative_to(results).as_posix() for p in results.rglob("*.json"))
        mtimes = {p: (results / p).stat().st_mtime_ns for p in files}
        second = ablate.run_ablation([2, 3], "quick", 1, cache, grid="center")
    finally:
        mp.undo()
    return dict(figs=figs, cache=cache, results=results, files=files, mtimes=mtimes, second=second)


def test_per_run_jsons_and_resume(quick_run: dict) -> None:
    assert quick_run["files"] == sorted([f"{n}_s0.json" for n in T2] + ["controls/multigrained_s0.json",
                                         "controls/ftp_pose_h6_l6_s0.json", "test_time/ftp_pose_h6_l6_s0.json"])
    assert quick_run["second"]["ran"] == 0 and quick_run["second"]["cached"] == 3
    after = {p: (quick_run["results"] / p).stat().st_mtime_ns for p in quick_run["files"]}
    assert after == quick_run["mtimes"]     # nothing retrained or rewritten
    rec = json.loads((quick_run["results"] / "ftp_pose_h6_l6_s0.json").read_text())
    assert rec["recipe_hash"] == ablate.recipe_hash(ablate.PRESETS["quick"])
    assert len(rec["ap_per_video"]) == 2 and rec["curve"][-1]["epoch"] == rec["epochs_run"] == 1
    assert set(rec["subsets"]) == {"all", "occluded", "blurred", "clean"}
    assert rec["perturbation_shares"]["persons"] > 0 and rec["train_s"] > 0 and rec["gflops"] > 0


def test_table2_schema(quick_run: dict) -> None:
    figs = quick_run["figs"]
    for name in ("table2.md", "table2.json", "table2.png", "table3.md", "table3.json", "table3.png"):
        assert (figs / name).is_file() and (figs / name).stat().st_size > 0, name
    t2 = json.loads((figs / "table2.json").read_text())
    assert [r["name"] for r in t2["rows"]] == T2 and t2["complete"] and t2["missing"] == []
    for r in t2["rows"]:
        assert r["n_seeds"] == 1 and len(r["map_per_seed"]) == 1 and r["ap"]["Mean"] == r["map_per_seed"][0]
        assert r["gflops"] > 0 and r["clips_per_s"] > 0 and r["level"]["n_videos"] == 2
    assert set(t2["controls"]) == {"key_frame_only", "random_pruning", "no_pruning"}
    assert set(t2["controls"]["key_frame_only"]) == {"multigrained", "ftp_pose_h6_l6"}
    assert all("ci95" in c and c["n_seeds"] == 1 for c in t2["comparisons"])
    assert all(c["verdict"] == "too few seeds" for c in t2["comparisons"])   # one seed: no verdict
    assert {c["comparison"] for c in t2["comparisons"]} >= {"(a) multigrained - baseline",
                                                           "(b) DPC-KNN - random pruning, same eps"}
    g = {r["name"]: r["gflops"] for r in t2["rows"]}
    assert g["ftp_pose_h6_l6"] < g["multigrained"]          # pruning removes computation
    assert "reproduces only when" in (figs / "table2.md").read_text()


def test_table3_schema(quick_run: dict) -> None:
    t3 = json.loads((quick_run["figs"] / "table3.json").read_text())
    assert len(t3["cells"]) == 16 and {(c["eps_h"], c["eps_l"]) for c in t3["cells"]} == {
        (h, e) for h in (1, 3, 6, 10) for e in (1, 3, 6, 10)}
    src = {(c["eps_h"], c["eps_l"]): c["source"] for c in t3["cells"]}
    assert src[(6, 6)] == "trained" and list(src.values()).count("test_time") == 15
    flops = {(c["eps_h"], c["eps_l"]): c["test_time"]["gflops"] for c in t3["cells"]}
    assert flops[(1, 1)] > flops[(6, 6)] > flops[(10, 10)]
    assert all(c["test_time"]["vs_6_6"]["ci95"] is not None for c in t3["cells"] if (c["eps_h"], c["eps_l"]) != (6, 6))


def test_table3_trained_cells_against_the_trained_6_6(quick_run: dict, tmp_path: Path) -> None:
    """A trained cell's own models minus the trained (6, 6) models, paired by seed and video: the
    difference is the mean of the per-video differences (here made by hand), with a verdict from 3
    seeds; the (6, 6) cell has none."""
    src = quick_run["results"]
    res = tmp_path / "res"
    res.mkdir()
    base = json.loads((src / "ftp_pose_h6_l6_s0.json").read_text())
    vids = [v for v, x in base["ap_per_video"].items() if x is not None]
    assert vids
    for s in range(3):
        (res / f"ftp_pose_h6_l6_s{s}.json").write_text(json.dumps(dict(base, seed=s)))
        lower = {v: (x - 5.0 - s - 0.5 * i if x is not None else None)
                 for i, (v, x) in enumerate(base["ap_per_video"].items())}
        (res / f"ftp_pose_h6_l10_s{s}.json").write_text(json.dumps(dict(base, seed=s, ap_per_video=lower)))
    t3 = ablate.write_tables([3], "quick", [0], res, grid="cross", table3_seeds=[0, 1, 2], figures=tmp_path)[3]
    cells = {(c["eps_h"], c["eps_l"]): c for c in t3["cells"]}
    v = cells[(6, 10)]["trained"]["vs_6_6"]
    by_hand = -np.mean([5.0 + s + 0.5 * i for s in range(3) for i, (_, x) in enumerate(base["ap_per_video"].items())
                        if x is not None])
    assert v["delta"] == pytest.approx(by_hand) and v["n_seeds"] == 3 and v["n_videos"] == len(vids)
    assert v["ci95"][1] < 0 and v["verdict"] == "reproduces"      # the paper's direction: below (6, 6)
    assert cells[(6, 6)]["trained"]["vs_6_6"] is None and cells[(1, 6)]["trained"] is None   # (1, 6): no runs
    assert "each cell's own models minus the trained (6, 6) models" in (tmp_path / "table3.md").read_text()


def test_missing_results_give_partial_tables(quick_run: dict, tmp_path: Path) -> None:
    res = tmp_path / "res"
    res.mkdir()
    (res / "baseline_s0.json").write_text((quick_run["results"] / "baseline_s0.json").read_text())
    out = ablate.write_tables([2, 3], "quick", [0, 1], res, figures=tmp_path)
    t2 = out[2]
    assert not t2["complete"] and "baseline_s1" in t2["missing"] and "multigrained_s0" in t2["missing"]
    rows = {r["name"]: r for r in t2["rows"]}
    assert rows["baseline"]["n_seeds"] == 1 and rows["multigrained"]["ap"]["Mean"] is None
    assert t2["comparisons"][0]["ci95"] is None and t2["comparisons"][0]["verdict"] is None
    assert "partial" in (tmp_path / "table2.md").read_text()
    assert all(c["test_time"]["map"] is None for c in out[3]["cells"])


def test_presets_and_grids() -> None:
    assert {"quick", "cpu", "gpu"} <= set(ablate.PRESETS)
    cpu = ablate.PRESETS["cpu"]
    assert cpu["synthetic"]["options"]["n_val_videos"] >= 32 and cpu["train"]["plateau_patience"] == 3
    assert ablate.PRESETS["gpu"]["train"]["data"]["input_size"] == [256, 192]
    assert len(ablate.configurations(3, "full")) == 16 and len(ablate.configurations(3, "cross")) == 7
    with pytest.raises(ValueError):
        ablate.configurations(4)


def test_job_claims_share_work_between_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job claimed by a live process is skipped; one claimed by a dead process is taken over."""
    import os
    import socket
    import subprocess
    import sys

    from ftp_pose.experiments import runs

    rh = ablate.recipe_hash(ablate.PRESETS["quick"])
    claims = tmp_path / "out" / "claims"
    claims.mkdir(parents=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    (claims / f"baseline_s0_{rh}.claim").write_text(f"{host} {live.pid}")
    (claims / f"multigrained_s0_{rh}.claim").write_text(f"{host} {dead.pid}")
    trained = []

    def fake_run_config(preset_name, preset, rh_, conf, seed, out, res, sweep=True):
        assert (claims / f"{conf['name']}_s{seed}_{rh_}.claim").read_text().endswith(f" {os.getpid()}")
        trained.append(conf["name"])
        return {"cached": False}

    monkeypatch.setattr(runs, "run_config", fake_run_config)
    monkeypatch.setattr(ablate, "write_tables", lambda *a, **k: {})
    try:
        res = ablate.run_ablation([2], "quick", 1, out=tmp_path / "out", results=tmp_path / "res")
    finally:
        live.kill()
        live.wait()
    assert trained == ["multigrained", "ftp_pose_h6_l6"]
    assert res["busy"] == 1 and res["ran"] == 2
    # the live process's claim stays; this process released its own
    assert sorted(p.name for p in claims.iterdir()) == [f"baseline_s0_{rh}.claim"]
