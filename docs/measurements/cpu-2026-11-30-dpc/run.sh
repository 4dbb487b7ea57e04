#!/usr/bin/env bash
# Final CPU measurements for issue 19 (run with the machine otherwise idle).
set -u
PY=python3
OUT=docs/measurements/cpu-2026-11-30-dpc; mkdir -p $OUT
cd .
lscpu | grep -E "Model name|^CPU\(s\)" > $OUT/cpu.txt
for th in 1 2; do
  $PY -m ftp_pose bench --backbone tiny --device cpu --throughput-batch 4 --warmup 2 --repeats 6 --rounds 3 --threads $th --out $OUT/bench_tiny_${th}t.json > $OUT/bench_tiny_${th}t.md 2>&1
done
$PY -m ftp_pose bench --backbone quick --img-size 128 96 --device cpu --throughput-batch 16 --warmup 3 --repeats 10 --rounds 5 --threads 1 --out $OUT/bench_quick_1t.json > $OUT/bench_quick_1t.md 2>&1
$PY -m ftp_pose bench --backbone quick --img-size 128 96 --device cpu --throughput-batch 16 --warmup 3 --repeats 10 --rounds 5 --threads 2 --out $OUT/bench_quick_2t.json > $OUT/bench_quick_2t.md 2>&1
# before/after with the same probe (tiny, 256x192, batch 4, 1 thread, interleaved, median of 5)
for r in 1 2; do
  (cd ../before && PYTHONPATH=../before $PY docs/measurements/cpu-2026-11-30/cpu_ratio_probe.py) >> $OUT/probe_before.txt 2>&1
  (cd . && PYTHONPATH=. $PY docs/measurements/cpu-2026-11-30/cpu_ratio_probe.py) >> $OUT/probe_after.txt 2>&1
done
echo done > $OUT/done
