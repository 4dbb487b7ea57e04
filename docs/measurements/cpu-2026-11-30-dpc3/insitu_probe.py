"""The two DPC modules of the quick preset (128 x 96, batch 1, one thread): timed alone on the
inputs they get in a forward, and inside the forward (wrappers around the calls).
Run from the repository root: PYTHONPATH=. python docs/measurements/cpu-2026-11-30-dpc3/insitu_probe.py"""
import collections
import statistics
import time

import numpy as np
import torch

from ftp_pose.models import build_model, dpc
from ftp_pose.models import dpc_cpu as D
from ftp_pose.models.dpc import DPCPruning

torch.set_num_threads(1)
torch.manual_seed(0)
model = build_model("ftp_pose", backbone="quick", img_size=(128, 96)).eval()
cfg = model.config
x = torch.randn(1, cfg.num_frames, 3, *cfg.input_size)
mods = [m for m in model.modules() if isinstance(m, DPCPruning)]
names = ["LRB", "HRB"]
captured = {}


def capture(mod, args, kwargs):
    captured.setdefault(id(mod), (args, kwargs))


hooks = [m.register_forward_pre_hook(capture, with_kwargs=True) for m in mods]
with torch.no_grad():
    model(x)
for h in hooks:
    h.remove()


def median_us(fn, n=300, warmup=30):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(ts)


acc = collections.defaultdict(list)


def timed(label, fn):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        r = fn(*a, **k)
        acc[label].append(time.perf_counter() - t0)
        return r
    return wrapper


with torch.no_grad():
    for name, mod in zip(names, mods):
        args, kwargs = captured[id(mod)]
        print(f"{name} module alone: {median_us(lambda: mod(*args, **kwargs)):.0f} us")
    D.dense_dpc_tokens_serial = timed("LRB compiled call", D.dense_dpc_tokens_serial)
    D.bilinear_dpc_tokens_serial = timed("HRB compiled call", D.bilinear_dpc_tokens_serial)
    dpc.gather_tokens = timed("gather (both)", dpc.gather_tokens)
    for name, mod in zip(names, mods):
        mod.forward = timed(f"{name} module", mod.forward)
    for _ in range(10):
        model(x)
    acc.clear()
    forward = []
    for _ in range(100):
        t0 = time.perf_counter()
        model(x)
        forward.append(time.perf_counter() - t0)
print(f"forward: {1e3 * statistics.median(forward):.2f} ms (median of 100)")
for label, v in acc.items():
    per = np.array(v).reshape(100, -1).sum(1)
    print(f"in the forward, {label}: {1e6 * np.median(per):.0f} us")
