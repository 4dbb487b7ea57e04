"""Ablation runs that stopped at the 40-epoch cap, continued from their last checkpoint under the
same recipe (same learning rate, same plateau rule: 3 validations in a row without +0.5 mean AP)
with the cap raised to 80: does the validation AP keep rising, and where does the plateau rule
stop them? The committed tables are not touched (a higher cap changes the recipe hash, so every
run would repeat); this measures what the cap costs.

Run from the repository root after `ablate --preset cpu` (it needs
runs/ablate_cpu/train/<run>_<hash>/last.pt), one run per process:
    OMP_NUM_THREADS=1 PYTHONPATH=. python docs/measurements/cpu-2026-11-30-cap/extend.py ftp_pose_h6_l6 0
It writes <run>_s<seed>.json beside this file: the validation curve (the committed run's, then the
continuation's), the epoch it stopped at, and the validation mean AP at epoch 40 and at the end
(poseval's, ground-truth boxes: the measure of the tables' mAP column).
"""
import json
import sys
import time
from pathlib import Path

import torch

from ftp_pose.engine.builders import build_dataset, build_model_from_config, ensure_synthetic
from ftp_pose.engine.config import config_from_dict
from ftp_pose.engine.train import train
from ftp_pose.experiments import ablate, runs
from ftp_pose.io import write_json

CAP = 80
name, seed = sys.argv[1], int(sys.argv[2])
here = Path(__file__).resolve().parent
preset = ablate.PRESETS["cpu"]
rh = ablate.recipe_hash(preset)
out = Path("runs/ablate_cpu")
conf = next(c for c in ablate.configurations(2) if c["name"] == name)
record = json.loads(Path(f"figures/ablation/cpu/{name}_s{seed}.json").read_text())
if record["stopped_on_plateau"] or record["epochs_run"] != record["epoch_cap"]:
    sys.exit(f"{name}_s{seed} stopped on the plateau at epoch {record['epochs_run']}: nothing to continue")
old_dir = out / "train" / f"{name}_s{seed}_{rh}"
cfg = config_from_dict(runs.train_values(preset, conf, seed, out), "cap extension")
cfg.optim.epochs = CAP
cfg.out_dir = str(out / "extend" / f"{name}_s{seed}_{rh}")
torch.set_num_threads(1)
ensure_synthetic(cfg)
train_set, val_set = build_dataset(cfg, "train"), build_dataset(cfg, "val")
model = build_model_from_config(cfg)
t0 = time.perf_counter()
result = train(cfg, resume=old_dir / "last.pt", model=model, train_set=train_set, val_set=val_set)
curve = [c for c in record["curve"] if "mean_ap" in c] + \
        [c for c in runs._curve(Path(cfg.out_dir)) if "mean_ap" in c and c["epoch"] > record["epochs_run"]]
write_json(here / f"{name}_s{seed}.json", {
    "run": f"{name}_s{seed}", "recipe_hash": rh, "from_checkpoint": str(old_dir / "last.pt"),
    "epoch_cap_before": record["epoch_cap"], "epoch_cap_now": CAP, "epochs_run": int(result["epoch"]),
    "stopped_on_plateau": int(result["epoch"]) < CAP,
    "map_at_cap": record["ap"]["Mean"],
    "map_at_end": curve[-1]["mean_ap"], "best_map": max(c["mean_ap"] for c in curve),
    "val_curve": [[c["epoch"], c["mean_ap"]] for c in curve],
    "extra_train_s": round(time.perf_counter() - t0, 1), "torch": torch.__version__,
})
print(f"{name}_s{seed}: mAP {record['ap']['Mean']:.1f} at epoch {record['epochs_run']} -> {curve[-1]['mean_ap']:.1f} "
      f"at epoch {result['epoch']}")
