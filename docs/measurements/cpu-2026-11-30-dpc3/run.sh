#!/usr/bin/env bash
# CPU measurements for issue 19 after the Gram matrix moved into the compiled call (run from the repository root with the
# machine otherwise idle): PY=.venv/bin/python bash docs/measurements/cpu-2026-11-30-dpc3/run.sh
set -u
PY=${PY:-python3}
OUT=docs/measurements/cpu-2026-11-30-dpc3; mkdir -p $OUT
lscpu | grep -E "Model name|^CPU\(s\)" > $OUT/cpu.txt
git rev-parse HEAD > $OUT/commit.txt 2>/dev/null || true
for th in 1 2; do
  $PY -m ftp_pose bench --backbone tiny --device cpu --throughput-batch 4 --warmup 2 --repeats 6 --rounds 3 --threads $th --out $OUT/bench_tiny_${th}t.json > $OUT/bench_tiny_${th}t.md 2>&1
  for tb in 4 16; do
    $PY -m ftp_pose bench --backbone quick --img-size 128 96 --device cpu --throughput-batch $tb --warmup 3 --repeats 10 --rounds 5 --threads $th --out $OUT/bench_quick_${th}t_b${tb}.json > $OUT/bench_quick_${th}t_b${tb}.md 2>&1
  done
done
echo done > $OUT/done
