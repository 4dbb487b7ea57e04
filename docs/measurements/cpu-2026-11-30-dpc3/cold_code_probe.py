"""Small operations timed back to back, and right after 5 ms of something else (a Python loop, a
sleep): on this machine code that has not run for a few milliseconds is slow.
Run: python docs/measurements/cpu-2026-11-30-dpc3/cold_code_probe.py"""
import time

import numpy as np
import torch

torch.set_num_threads(1)
x = torch.randn(1, 144, 96)
a = np.random.default_rng(0).random((144, 96), dtype=np.float32)
pc = time.perf_counter


def spin():
    t0 = pc()
    while pc() - t0 < 0.005:
        pass


def sequence():
    t = [pc()]
    for _ in range(3):
        x.sum()
        t.append(pc())
    for _ in range(3):
        a.sum()
        t.append(pc())
    for _ in range(3):
        torch.bmm(x, x.transpose(1, 2))
        t.append(pc())
    return np.diff(t) * 1e6


print("us per call: torch sum x3 | numpy sum x3 | torch bmm 144x96x144 x3 (median of 50)")
for name, before in [("back to back", lambda: None), ("after a 5 ms Python loop", spin),
                     ("after a 5 ms sleep", lambda: time.sleep(0.005))]:
    runs = []
    for _ in range(60):
        before()
        runs.append(sequence())
    print(f"{name:26s}", " ".join(f"{v:6.1f}" for v in np.median(np.array(runs[10:]), 0)))
