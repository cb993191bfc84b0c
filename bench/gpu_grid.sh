#!/bin/bash
# The GPU check of issue 15 as one script, for a device lent for minutes:
#   1. the CUDA tests (tests/test_cuda.py: device data, the pinned ring, graphs, the guard);
#   2. the speed benchmark: naive step, bare compiled bf16 step, end to end (data made on
#      the device, with CUDA graphs, with host data), PARALLEL runs at once against one;
#   3. full `paper`-preset runs of Table 1 (ONLY patterns; default the hierarchical row,
#      beta 4 first), PARALLEL at a time with `stvae reproduce --parallel`, each scored
#      with both probes; TRAIN_S seconds for all of it, then SIGTERM: an unfinished run
#      stops at a checkpoint and is scored from there (partial).
#
#   bash bench/gpu_grid.sh OUT [TRAIN_S] [BENCH_S]
#
# OUT receives env.txt, tests.txt, bench.txt, reproduce.log, report/<dataset>-<preset>.{json,md}
# (finished runs only), and per run runs/<name>/: config.json, metrics.jsonl, wall.json,
# eval.json, <name>.log and model-bf16.safetensors (its weights in bf16, about 3 MB; the
# resumable checkpoint with Adam's state is 20 MB and stays behind).
# A CPU smoke test of the whole flow:
#   DEVICE=cpu PRESET=cpu ONLY='hierarchical-f4-beta4-seed0 slow-f4-beta4-seed0' \
#       BENCH_ARGS="--configs 1 --steps 2 --batch-videos 2" bash bench/gpu_grid.sh /tmp/g 60 300
set -u
OUT=${1:?usage: bench/gpu_grid.sh OUT [TRAIN_S] [BENCH_S]}
TRAIN_S=${2:-420}
BENCH_S=${3:-150}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-paper}
DATASET=${DATASET:-bouncing-mnist}
PARALLEL=${PARALLEL:-3}
ONLY=${ONLY:-hierarchical-f4-beta4-seed0 hierarchical-f4-beta1-seed0 hierarchical-f4-beta2-seed0}
PY=${PYTHON:-python3}
RUNS=${RUNS:-$(mktemp -d)}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/runs"

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
    nproc
} >"$OUT/env.txt" 2>&1

timeout 120 "$PY" -m pytest -q tests/test_cuda.py tests/test_on_device.py >"$OUT/tests.txt" 2>&1
echo "exit $?" >>"$OUT/tests.txt"

timeout "$BENCH_S" "$PY" bench/train_speed.py --device "$DEVICE" --steps 200 \
    --parallel "$PARALLEL" ${BENCH_ARGS:-} >"$OUT/bench.txt" 2>&1
echo "exit $?" >>"$OUT/bench.txt"

only=()
for pattern in $ONLY; do only+=(--only "$pattern"); done
timeout -s TERM -k 120 "$TRAIN_S" "$PY" -m stvae reproduce --dataset "$DATASET" \
    --preset "$PRESET" --parallel "$PARALLEL" "${only[@]}" --out "$RUNS" \
    --report-dir "$OUT/report" >"$OUT/reproduce.log" 2>&1
echo "exit $?" >>"$OUT/reproduce.log"

for run in "$RUNS/$DATASET-$PRESET"/*/; do
    name=$(basename "$run")
    [ -f "$run/config.json" ] || continue
    if [ ! -f "$run/eval.json" ]; then  # stopped by the time limit: score what it reached
        timeout 150 "$PY" -m stvae evaluate "$run" >>"$OUT/reproduce.log" 2>&1
    fi
    mkdir -p "$OUT/runs/$name"
    cp "$run"/config.json "$run"/metrics.jsonl "$run"/wall.json "$run"/eval.json \
        "$OUT/runs/$name/" 2>/dev/null
    cp "$RUNS/$DATASET-$PRESET/$name.log" "$OUT/runs/$name/" 2>/dev/null
    "$PY" - "$run" "$OUT/runs/$name/model-bf16.safetensors" >>"$OUT/reproduce.log" 2>&1 <<'EOF'
import sys
from pathlib import Path
import torch
from stvae.checkpoint import save_weights
from stvae.train import load_run

model, config = load_run(sys.argv[1])  # final weights, else the last checkpoint
save_weights(Path(sys.argv[2]), model.to(torch.bfloat16), config.to_dict())
EOF
done
