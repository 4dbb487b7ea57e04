"""Two threads: the DPC share with the parallel launch of the compiled loops (from 2M distance
pairs per call) and with the serial call forced, side by side.
Run: PYTHONPATH=. python docs/measurements/cpu-2026-11-30-dpc3/serial_vs_parallel.py {parallel|serial} {quick|tiny} BATCH
(quick: 128 x 96, the HRB has 768 tokens, 4 x 768^2 = 2.4M pairs at batch 4; tiny: 256 x 192, 3072 tokens)"""
import sys

from ftp_pose.bench import run_bench
from ftp_pose.models import dpc_cpu

mode, preset, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "serial":
    dpc_cpu.PARALLEL_MIN_PAIRS = 1 << 40
size = dict(img_size=(128, 96), warmup=3, repeats=10, rounds=5) if preset == "quick" else dict(warmup=2, repeats=6, rounds=3)
result = run_bench(["baseline", "ftp_pose"], backbone=preset, device="cpu", batch=1, throughput_batch=batch, threads=2,
                   free_selection=False, progress=False, **size)
b = next(r for r in result["rows"] if r["name"] == "ftp_pose")
print(f"{preset} {mode}: DPC share {100 * b['dpc_frac']:.1f} % at batch 1, {100 * b['dpc_frac_throughput']:.1f} % "
      f"at batch {batch}; (b) {b['fps_throughput']:.1f} clips/s at batch {batch}")
