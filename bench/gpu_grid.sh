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
# STAGES (default "tests bench train") picks the steps. The runs live in RUNS (default
# runs/gpu-grid, ignored by git), so a second call on the still-warm machine continues
# them: `STAGES=train bash bench/gpu_grid.sh OUT 540`. Within the device tool's limit of
# 8 files back, OUT receives bench.txt, tests.txt, env.txt, reproduce.log, the report
# (<dataset>-<preset>.md, finished runs only) and gpu-grid.tar.gz with all of it plus, per
# run, config.json, metrics.jsonl, wall.json, eval.json, its log and model-bf16.safetensors
# (its weights in bf16, about 3 MB; the resumable 20 MB checkpoint stays behind).
# Needs torch with CUDA, scikit-learn, safetensors and mlxtend (a wheel in .wheels/ is
# installed when mlxtend is missing). A CPU smoke test of the whole flow:
#   DEVICE=cpu PRESET=cpu PARALLEL=2 ONLY='hierarchical-f4-beta4-seed0 slow-f4-beta4-seed0' \
#       BENCH_ARGS="--configs 1 --steps 2 --batch-videos 2" bash bench/gpu_grid.sh /tmp/g 100 300
set -u
OUT=${1:?usage: bench/gpu_grid.sh OUT [TRAIN_S] [BENCH_S]}
TRAIN_S=${2:-420}
BENCH_S=${3:-150}
STAGES=${STAGES:-tests bench train}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-paper}
DATASET=${DATASET:-bouncing-mnist}
PARALLEL=${PARALLEL:-3}
ONLY=${ONLY:-hierarchical-f4-beta4-seed0 hierarchical-f4-beta1-seed0 hierarchical-f4-beta2-seed0}
PY=${PYTHON:-python3}
RUNS=${RUNS:-runs/gpu-grid}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-src}
KEEP=$(mktemp -d)/gpu-grid # everything, packed into OUT at the end
mkdir -p "$OUT" "$KEEP/runs" "$RUNS"
"$PY" -c "import mlxtend" 2>/dev/null ||
    "$PY" -m pip install --quiet --no-deps .wheels/mlxtend-*.whl

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
    nproc
    git rev-parse --short HEAD 2>/dev/null
} >>"$RUNS/env.txt" 2>&1

case " $STAGES " in *" tests "*)
    timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_on_device.py \
        >"$RUNS/tests.txt" 2>&1
    echo "exit $?" >>"$RUNS/tests.txt"
    ;;
esac

case " $STAGES " in *" bench "*)
    timeout "$BENCH_S" "$PY" bench/train_speed.py --device "$DEVICE" --steps 200 \
        --parallel "$PARALLEL" ${BENCH_ARGS:-} >"$RUNS/bench.txt" 2>&1
    echo "exit $?" >>"$RUNS/bench.txt"
    ;;
esac

case " $STAGES " in *" train "*)
    only=()
    for pattern in $ONLY; do only+=(--only "$pattern"); done
    timeout -s TERM -k 120 "$TRAIN_S" "$PY" -m stvae reproduce --dataset "$DATASET" \
        --preset "$PRESET" --parallel "$PARALLEL" "${only[@]}" --out "$RUNS" \
        --report-dir "$RUNS/report" >>"$RUNS/reproduce.log" 2>&1
    echo "exit $? $(date -u)" >>"$RUNS/reproduce.log"
    ;;
esac

for run in "$RUNS/$DATASET-$PRESET"/*/; do
    [ -f "$run/config.json" ] || continue
    name=$(basename "$run")
    # stopped by the time limit (no final weights): score the step it reached, again on
    # every call (an earlier call's score is of an earlier step)
    if [ ! -f "$run/model.safetensors" ] || [ ! -f "$run/eval.json" ]; then
        timeout 150 "$PY" -m stvae evaluate "$run" >>"$RUNS/reproduce.log" 2>&1
    fi
    mkdir -p "$KEEP/runs/$name"
    cp "$run"/config.json "$run"/metrics.jsonl "$run"/wall.json "$run"/eval.json \
        "$RUNS/$DATASET-$PRESET/$name.log" "$KEEP/runs/$name/" 2>/dev/null
    "$PY" -c '
import sys
from pathlib import Path
import torch
from stvae.checkpoint import save_weights
from stvae.train import load_run

model, config = load_run(sys.argv[1])  # final weights, else the last checkpoint
save_weights(Path(sys.argv[2]), model.to(torch.bfloat16), config.to_dict())
' "$run" "$KEEP/runs/$name/model-bf16.safetensors" >>"$RUNS/reproduce.log" 2>&1
done
cp "$RUNS"/*.txt "$RUNS/reproduce.log" "$RUNS"/report/*.md "$KEEP/" 2>/dev/null
cp "$RUNS"/report/*.json "$KEEP/" 2>/dev/null
tar -czf "$OUT/gpu-grid.tar.gz" -C "$(dirname "$KEEP")" gpu-grid
cp "$KEEP"/*.txt "$KEEP"/reproduce.log "$KEEP"/*.md "$OUT/" 2>/dev/null
ls -la "$OUT"
