"""How long small operations take right after a large matrix product (one thread).

Run from the repository root: ``python docs/measurements/cpu-2026-11-30-dpc2/after_matmul_probe.py``.
Prints the median time (µs) of each operation alone and right after ``big @ big`` (1024 x 1024).
"""
import statistics
import time

import numpy as np
import torch

torch.set_num_threads(1)
torch.manual_seed(0)
x = torch.randn(1, 144, 96)
big = torch.randn(1024, 1024)
ops = {
    "tensor sum (1 x 144 x 96)": lambda: x.sum(),
    "bmm (1 x 144 x 96) @ its transpose": lambda: torch.bmm(x, x.transpose(1, 2)),
    "np.empty((1, 144, 12))": lambda: np.empty((1, 144, 12), np.float32),
}
for name, op in ops.items():
    res = {}
    for mode in ("alone", "after matmul"):
        ts = []
        for _ in range(60):
            if mode == "after matmul":
                big @ big
            t0 = time.perf_counter()
            op()
            ts.append(1e6 * (time.perf_counter() - t0))
        res[mode] = statistics.median(ts[10:])
    print(f"{name}: {res['alone']:.1f} us alone, {res['after matmul']:.1f} us right after the matmul")
