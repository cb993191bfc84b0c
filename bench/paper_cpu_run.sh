#!/usr/bin/env bash
# Issue 25's long run: the `paper` preset unchanged on this CPU, beta 4, seed 0, 4 features,
# a weight snapshot every 1,500 steps and a checkpoint every 200 (a stop loses minutes).
# It lives outside the work tree, in its own clone at a fixed commit, so later work never
# changes the code under it; the same command starts it or, once stopped, resumes it.
#
#   bash bench/paper_cpu_run.sh [MODEL] [COMMIT]    # MODEL: hierarchical (default) or slow
#
# Then, from the work tree, as its snapshots arrive (about 40 s each to score):
#   stvae curve ~/long/runs/<MODEL>-f4-beta4-seed0 \
#     --report docs/results/bouncing-mnist-paper-cpu --commit <COMMIT>
# It runs at nice 19. Anything run beside it should use OMP_NUM_THREADS=1 (two
# multi-threaded torch processes on two cores slow each other by tens of times), or
# pause it meanwhile: kill -STOP / kill -CONT its pid.
set -euo pipefail
MODEL=${1:-hierarchical}
COMMIT=${2:-1466fe7}
ROOT=${LONG_ROOT:-$HOME/long}
REPO=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/runs/$MODEL-f4-beta4-seed0"
mkdir -p "$ROOT/runs"
if [ ! -d "$ROOT/stvae" ]; then
  git clone -q "$REPO" "$ROOT/stvae"
  git -C "$ROOT/stvae" checkout -q "$COMMIT"
fi
have=$(git -C "$ROOT/stvae" rev-parse --short=7 HEAD)
if [ "$have" != "${COMMIT:0:7}" ]; then
  echo "$ROOT/stvae is at $have, not $COMMIT: a run is never continued by other code" >&2
  exit 2
fi
make -C "$ROOT/stvae" setup >/dev/null
if pgrep -f "stvae train .*--out $RUN( |$)" >/dev/null; then
  echo "already training: $RUN"
  exit 0
fi
cd "$ROOT/stvae"
if [ -f "$RUN/config.json" ]; then
  set -- train --resume --out "$RUN" --no-check
else
  set -- train --preset paper --model "$MODEL" --features 4 --beta 4 --seed 0 \
    --snapshot-every 1500 --checkpoint-every 200 --out "$RUN" --no-check
fi
nohup setsid nice -n 19 .venv/bin/stvae "$@" >> "$ROOT/$MODEL.log" 2>&1 < /dev/null &
echo "training $RUN in process $! (log: $ROOT/$MODEL.log)"
