#!/bin/bash
# The GPU check of issue 4, as one script: the speed benchmark on the GPU, then the paper
# preset (Bouncing MNIST, hierarchical, 2 + 2 features, beta BETA (default 4), 64 videos x 16
# frames a step, Adam 1e-3 / 10 every 10k steps, bf16, compiled) trained on CUDA for TRAIN_S
# seconds, stopped by SIGTERM (a checkpoint of the step reached) and evaluated.
#
#   [BETA=4] bash bench/gpu_paper.sh OUT [TRAIN_S] [BENCH_S]
#
# Writes into OUT: bench.txt, train.log (the device first), eval.log, row.json (the report
# row of docs/results/bouncing-mnist-paper.json, with the device and the steps reached), the
# run's config.json, metrics.jsonl, eval.json, and model.safetensors (the weights of the step
# reached, for `stvae figures`). DEVICE=cpu runs the same flow on a CPU; TRAIN_ARGS and
# BENCH_ARGS add flags (a smoke test: TRAIN_ARGS="--batch-videos 2 --log-every 2").
set -u
OUT=${1:?usage: bench/gpu_paper.sh OUT [TRAIN_S] [BENCH_S]}
TRAIN_S=${2:-300}
BENCH_S=${3:-120}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
RUN=${RUN:-$(mktemp -d)/run}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"

timeout "$BENCH_S" "$PY" bench/train_speed.py --device "$DEVICE" --configs 3 --steps 200 \
    ${BENCH_ARGS:-} >"$OUT/bench.txt" 2>&1
echo "exit $?" >>"$OUT/bench.txt"

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} >"$OUT/train.log" 2>&1
timeout -s TERM -k 60 "$TRAIN_S" "$PY" -m stvae train --preset paper --model hierarchical \
    --features 4 --beta "${BETA:-4}" --device "$DEVICE" --out "$RUN" --no-check ${TRAIN_ARGS:-} \
    >>"$OUT/train.log" 2>&1
echo "exit $?" >>"$OUT/train.log"

timeout 150 "$PY" -m stvae evaluate "$RUN" >"$OUT/eval.log" 2>&1
echo "exit $?" >>"$OUT/eval.log"
cp "$RUN"/config.json "$RUN"/metrics.jsonl "$RUN"/eval.json "$OUT"/ 2>/dev/null

"$PY" - "$RUN" "$DEVICE" >"$OUT/row.json" 2>>"$OUT/eval.log" <<'EOF'
import json, sys
from pathlib import Path
import torch
from stvae.checkpoint import read_json
from stvae.reproduce import GridRun, result_row

run, device = Path(sys.argv[1]), sys.argv[2]
config, ev = read_json(run / "config.json"), read_json(run / "eval.json")
rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
m = config["model"]
row = result_row(GridRun(m["kind"], m["beta"], m["features"], config["seed"]), ev,
                 rows[-1]["wall_s"])
frames = config["batch_videos"] * config["data"]["frames"]
steady = [r for r in rows if r["step"] > rows[0]["step"]]  # the first record holds compiling
fps = frames * (steady[-1]["step"] - rows[0]["step"]) / (steady[-1]["wall_s"] - rows[0]["wall_s"])
row.update(
    preset="paper",
    device=torch.cuda.get_device_name() if device == "cuda" else "cpu",
    steps_done=rows[-1]["step"],
    steps_of_schedule=config["steps"],
    frames_per_s=fps,
    final_loss={k: rows[-1][k] for k in ("loss", "reconstruction", "kl_static", "kl_temporal")},
)
print(json.dumps([row], indent=2))
EOF

"$PY" - "$RUN" "$OUT/model.safetensors" 2>>"$OUT/eval.log" <<'EOF'
import sys
from pathlib import Path
from stvae.checkpoint import save_weights
from stvae.train import load_run

model, config = load_run(sys.argv[1])  # the last checkpoint: the step reached
save_weights(Path(sys.argv[2]), model, config.to_dict())
EOF
