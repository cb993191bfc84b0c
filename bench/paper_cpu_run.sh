#!/usr/bin/env bash
# Issue 25's long run: the `paper` preset unchanged on this CPU, beta 4, seed 0, 4 features,
# a weight snapshot every 1,500 steps and a checkpoint every 200 (a stop loses minutes).
# It lives outside the work tree, in its own clone at a fixed commit, so later work never
# changes the code under it; the same command starts it or, once stopped, resumes it.
#
#   bash bench/paper_cpu_run.sh [MODEL] [COMMIT]       # start or resume (MODEL: hierarchical, slow)
#   bash bench/paper_cpu_run.sh save [MODEL]           # stop it and keep it in the repository
#   bash bench/paper_cpu_run.sh keep [MODEL]           # (started by the first) copy it there
#                                                      # every KEEP_EVERY s (600) while it trains
#   bash bench/paper_cpu_run.sh score [MODEL]          # score its new snapshots (below)
#   bash bench/paper_cpu_run.sh finish [MODEL]         # once ended: the steps below, in one
#
# A machine here does not outlive its session, so a run that needs several sessions
# travels in the repository: `save` stops the run with SIGTERM (a checkpoint of the step
# in flight), then copies what resuming needs (config.json, the checkpoint, metrics.jsonl,
# curve.json, and the snapshots not yet scored plus the newest one) into long/<run>/ of the
# work tree (LONG_KEPT elsewhere), to be committed; on a new machine the
# first command finds no run directory, restores it from long/<run>/ and resumes it there.
# The curve's points already scored are in curve.json; score new snapshots before `save`.
# A session that ends without `save` loses the steps since the last commit of long/<run>/
# (sessions 31-33 lost steps 1,671-5,600 so): the start therefore also starts `keep`, which
# refreshes long/<run>/ every ten minutes (checkpoint before metrics: a resume drops records
# past its checkpoint, never the reverse), so the work tree always holds a recent state.
#
# Then, from the work tree, as its snapshots arrive (about 40-90 s each to score; `score`
# runs it, on one thread while the run trains; REPORT is docs/results/bouncing-mnist-paper-cpu,
# with -<MODEL> after it for a model other than hierarchical):
#   stvae curve ~/long/runs/<MODEL>-f4-beta4-seed0 --report REPORT --commit <COMMIT>
# How far a point moves with the probe sets alone (weights fixed; docs/results.md):
#   python bench/probe_noise.py ~/long/runs/<MODEL>-f4-beta4-seed0 --steps <STEP> ...
# When it has ended (step 30,000; the last snapshot holds the final weights), from the
# work tree: the command above once more (its last point is `evaluate` of the final
# weights), then
#   stvae evaluate ~/long/runs/<MODEL>-f4-beta4-seed0
#   stvae figures ~/long/runs/<MODEL>-f4-beta4-seed0 \
#     --out docs/figures/bouncing-mnist-paper-cpu-<MODEL>-beta4
#   python bench/probe_noise.py ~/long/runs/<MODEL>-f4-beta4-seed0 --steps 30000
# and commit the report and the figures (eval.json is not in them: copy it to
# REPORT-eval.json). A finished run's resumable state then leaves the tree: its final
# weights, config and metrics go to pretrained/bouncing-mnist-<MODEL>-beta4/ (a run
# directory users load; write its README.md card by hand, with the spread) and
# long/<run>/ is removed. `finish` does all of that but the card and the commit, and
# prints the spread's table for the noise report.
# The keeper refreshes long/<run>/ in the work tree; commit it at most once each time work
# stops (`save`), never at every refresh: each commit of the 20 MB checkpoint stays in
# the clone's history for good (tests/test_pretrained.py fails on a tracked file over 8 MB
# outside pretrained/ other than the state of one run still training).
# It runs at nice 19. Anything run beside it should use OMP_NUM_THREADS=1 (two
# multi-threaded torch processes on two cores slow each other by tens of times), or
# pause it meanwhile: kill -STOP / kill -CONT its pid.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
KEPT=${LONG_KEPT:-$REPO/long}  # where runs travel between machines (committed)
ROOT=${LONG_ROOT:-$HOME/long}
KEEP=(config.json checkpoint.safetensors metrics.jsonl curve.json)
keep_run() {  # RUN DEST: what resuming needs, each file replaced whole (copy, then rename)
  mkdir -p "$2/snapshots"
  for f in "${KEEP[@]}"; do
    if [ -f "$1/$f" ]; then cp "$1/$f" "$2/.$f.tmp" && mv "$2/.$f.tmp" "$2/$f"; fi
  done
  # Snapshots travel too, but only those a later session still needs: each one not yet
  # scored in curve.json (else a session that ends between a snapshot and its scoring
  # loses that point) and the newest (for its probe spread, bench/probe_noise.py).
  local want
  want=$(python3 - "$1" <<'PY'
import json, pathlib, sys
run = pathlib.Path(sys.argv[1])
snaps = sorted((run / "snapshots").glob("step-*.safetensors"))
curve = run / "curve.json"
scored = {p["step"] for p in json.loads(curve.read_text())["points"]} if curve.exists() else set()
want = {s.name for s in snaps if int(s.stem[5:]) not in scored} | {s.name for s in snaps[-1:]}
print("\n".join(sorted(want)))
PY
)
  for s in $want; do
    if [ ! -f "$2/snapshots/$s" ]; then
      cp "$1/snapshots/$s" "$2/snapshots/.$s.tmp" && mv "$2/snapshots/.$s.tmp" "$2/snapshots/$s"
    fi
  done
  for s in "$2"/snapshots/step-*.safetensors; do
    if [ -f "$s" ] && ! grep -qx "$(basename "$s")" <<< "$want"; then rm -f "$s"; fi
  done
  git -C "$ROOT/stvae" rev-parse --short=7 HEAD > "$2/COMMIT"
}
if [ "${1:-}" = score ] || [ "${1:-}" = finish ]; then
  MODEL=${2:-hierarchical}
  RUN="$ROOT/runs/$MODEL-f4-beta4-seed0"
  REPORT=docs/results/bouncing-mnist-paper-cpu
  if [ "$MODEL" != hierarchical ]; then REPORT="$REPORT-$MODEL"; fi
  if [ ! -d "$RUN" ]; then echo "no run at $RUN (start or restore it first)" >&2; exit 2; fi
  cd "$REPO"
  if pgrep -f "stvae train .*--out $RUN( |$)" >/dev/null; then
    if [ "$1" = finish ]; then echo "$RUN is still training: finish once it has ended" >&2; exit 2; fi
    export OMP_NUM_THREADS=1  # beside the trainer's two threads
  fi
  .venv/bin/stvae curve "$RUN" --report "$REPORT" \
    --commit "$(git -C "$ROOT/stvae" rev-parse --short=7 HEAD)"
  if [ "$1" = finish ]; then
    .venv/bin/stvae evaluate "$RUN"
    .venv/bin/stvae figures "$RUN" --out "docs/figures/bouncing-mnist-paper-cpu-$MODEL-beta4"
    cp "$RUN/eval.json" "$REPORT-eval.json"
    last=$(basename "$(ls "$RUN"/snapshots/step-*.safetensors | tail -n 1)" .safetensors)
    .venv/bin/python bench/probe_noise.py "$RUN" --steps "$((10#${last#step-}))"
    pub="$REPO/pretrained/bouncing-mnist-$MODEL-beta4"
    mkdir -p "$pub"
    for f in config.json model.safetensors metrics.jsonl; do cp "$RUN/$f" "$pub/$f"; done
    rm -rf "$KEPT/$MODEL-f4-beta4-seed0"
    echo "final weights in $pub (write its README.md card); $KEPT/$MODEL-f4-beta4-seed0 removed" >&2
  fi
  exit 0
fi
if [ "${1:-}" = keep ]; then
  MODEL=${2:-hierarchical}
  RUN="$ROOT/runs/$MODEL-f4-beta4-seed0"
  while pgrep -f "stvae train .*--out $RUN( |$)" >/dev/null; do
    keep_run "$RUN" "$KEPT/$MODEL-f4-beta4-seed0"
    sleep "${KEEP_EVERY:-600}"
  done
  keep_run "$RUN" "$KEPT/$MODEL-f4-beta4-seed0"
  exit 0
fi
if [ "${1:-}" = save ]; then
  MODEL=${2:-hierarchical}
  RUN="$ROOT/runs/$MODEL-f4-beta4-seed0"
  pid=$(pgrep -f "stvae train .*--out $RUN( |$)" || true)
  if [ -n "$pid" ]; then
    kill -CONT $pid 2>/dev/null || true
    kill -TERM $pid
    while kill -0 $pid 2>/dev/null; do sleep 1; done
  fi
  dest="$KEPT/$MODEL-f4-beta4-seed0"
  keep_run "$RUN" "$dest"
  echo "kept $RUN in $dest (commit it); its step: $(tail -n 1 "$RUN/metrics.jsonl" | grep -o '"step": [0-9]*')"
  exit 0
fi
MODEL=${1:-hierarchical}
RUN="$ROOT/runs/$MODEL-f4-beta4-seed0"
kept="$KEPT/$MODEL-f4-beta4-seed0"
COMMIT=${2:-$(cat "$kept/COMMIT" 2>/dev/null || echo 56f7840)}
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
if [ ! -e "$RUN" ] && [ -f "$kept/checkpoint.safetensors" ]; then
  mkdir -p "$RUN"
  for f in "${KEEP[@]}"; do
    if [ -f "$kept/$f" ]; then cp "$kept/$f" "$RUN/$f"; fi
  done
  if compgen -G "$kept/snapshots/step-*.safetensors" >/dev/null; then
    mkdir -p "$RUN/snapshots" && cp "$kept"/snapshots/step-*.safetensors "$RUN/snapshots/"
  fi
  echo "restored $RUN from $kept"
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
sleep 5  # the keeper stops when it finds no trainer
nohup setsid bash "$REPO/bench/paper_cpu_run.sh" keep "$MODEL" > /dev/null 2>&1 < /dev/null &
echo "keeping it in $kept every ${KEEP_EVERY:-600} s (process $!); commit that folder"
