#!/usr/bin/env bash
# Issue 28's sprites grid on a 2-core CPU beside the long run (bench/paper_cpu_run.sh): one
# thread, one run per `reproduce` call, in the order that matters most: each split model
# once, the published sizes (f 256, z 32), the baselines, then the split models' second
# seed. A run whose row is already in docs/results/sprites-cpu.json with the field's
# protocol is skipped; a stopped run continues from its checkpoint. Run it from a clone
# at a fixed commit (not the work tree you edit), then copy docs/results/sprites-cpu.*
# back, copy their tables into the pages that quote them, and commit them as runs finish:
#
#   bash bench/sprites_grid.sh [RUNS_DIR]       # default: runs/
#   python bench/sync_tables.py sprites-cpu     # in the work tree, after the copy
#
# With both cores free, a second lane may run other items at once, but under its own
# --out folder (reproduce holds a lock on its --out folder; the report has its own lock,
# so two folders share one report), for example:
#   stvae reproduce --dataset sprites --preset cpu --seeds 2 --out runs2 --only NAME
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-runs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for run in hierarchical-f8-beta1-seed0 dsvae-f8-beta1-seed0 dsvae-full-s256-t32-beta1-seed0 \
    hierarchical-s256-t32-beta1-seed0 dsvae-factorized-s256-t32-beta1-seed0 \
    slow-f8-beta1-seed0 vae-f8-beta1-seed0 \
    hierarchical-f8-beta1-seed1 dsvae-f8-beta1-seed1 dsvae-full-s256-t32-beta1-seed1 \
    hierarchical-s256-t32-beta1-seed1 dsvae-factorized-s256-t32-beta1-seed1; do
  .venv/bin/stvae reproduce --dataset sprites --preset cpu --seeds 2 --out "$RUNS" --only "$run"
  rc=$?
  if [ $rc -ne 0 ]; then echo "grid stopped ($rc) at $run"; exit $rc; fi
done
echo "grid done"
# Then the hierarchical model trained three times as long (docs/results.md, "Colour arrives
# with training"), scored with the field's protocol: commit its config.json and eval.json.
long="$RUNS/sprites-long/hierarchical-f8-beta1-7200"
if [ ! -f "$long/eval.json" ]; then
  if [ -f "$long/config.json" ]; then
    .venv/bin/stvae train --resume --out "$long" --no-check || exit $?
  else
    .venv/bin/stvae train --preset cpu --data sprites --model hierarchical --features 8 \
      --steps 7200 --lr-decay-every 2400 --no-check --out "$long" || exit $?
  fi
  .venv/bin/stvae evaluate "$long" || exit $?
fi
echo "7,200-step run scored: $long/eval.json"
