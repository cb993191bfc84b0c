#!/usr/bin/env bash
# Issue 25's long run: the `paper` preset unchanged on this CPU, beta 4, seed 0, 4 features,
# a weight snapshot every 1,500 steps and a checkpoint every 200 (a stop loses minutes).
# It lives outside the work tree, in its own clone at a fixed commit, so later work never
# changes the code under it; the same command starts it or, once stopped, resumes it.
#
#   bash bench/paper_cpu_run.sh [NAME] [COMMIT]        # start or resume the long run NAME
#   bash bench/paper_cpu_run.sh save [NAME]            # stop it and keep it in the repository
#   bash bench/paper_cpu_run.sh keep [NAME]            # (started by the first) copy it there
#                                                      # every KEEP_EVERY s (600) while it trains
#   bash bench/paper_cpu_run.sh score [NAME]           # score its new snapshots (below)
#   bash bench/paper_cpu_run.sh finish [NAME]          # once ended: the steps below, in one
#
# NAME (default hierarchical; `run_spec` below): hierarchical or slow, Table 1's beta-4 row
# at the paper's schedule on Bouncing MNIST (issues 25, 43); sprites-dsvae or
# sprites-hierarchical, the field's 100-epoch mark on sprites-field (issue 48: 256 + 32
# features, 100 clips of 8 frames a step, 8,750 steps = 7 M frames, a snapshot every 875,
# each scored with the judge); chairs-hierarchical, issue 49's question on chairs: 4 + 4
# features, beta 4, the paper's batch for 10,500 steps with the paper's schedule shape
# (lr x 0.1 every 3,500), a snapshot every 700, its report beside the cpu grid's beta-4
# runs (docs/results/chairs-cpu.json). The Bouncing MNIST runs share the clone
# ~/long/stvae at 56f7840; the sprites runs have ~/long/stvae-sprites (dsvae, at 0c25497)
# and ~/long/stvae-sprites-hierarchical, the chairs run ~/long/stvae-chairs, each cloned
# at the work tree's HEAD on its first start (its commit travels in long/<run>/COMMIT).
#
# A machine here does not outlive its session, so a run that needs several sessions
# travels in the repository: `save` stops the run with SIGTERM (a checkpoint of the step
# in flight), then copies what resuming needs (config.json, the checkpoint, metrics.jsonl
# and segments.jsonl, curve.json, and the snapshots not yet scored plus the newest one)
# into long/<run>/ of the work tree (LONG_KEPT elsewhere), to be committed; on a new
# machine the first command finds no run directory, restores it from long/<run>/ and
# resumes it there.
# The curve's points already scored are in curve.json; score new snapshots before `save`.
# A session that ends without `save` loses the steps since the last commit of long/<run>/
# (sessions 31-33 lost steps 1,671-5,600 so): the start therefore also starts `keep`, which
# refreshes long/<run>/ every ten minutes (checkpoint before metrics: a resume drops records
# past its checkpoint, never the reverse), so the work tree always holds a recent state.
#
# Then, from the work tree, as its snapshots arrive (`score`; about 40-90 s each on
# Bouncing MNIST, minutes with the sprites runs' judge; on one thread while the run
# trains), the run's REPORT (`run_spec`: docs/results/bouncing-mnist-paper-cpu[-slow],
# docs/results/sprites-field-<kind>-long) is written by
#   stvae curve ~/long/runs/<DIR> [CURVE flags] --report REPORT --commit <COMMIT>
# (CURVE: the sprites runs' --judge; the slow run's --against the hierarchical run's curve,
# sprites-hierarchical's against sprites-dsvae's; the chairs run's --beside its grid)
# How far a Bouncing MNIST point moves with the probe sets alone (weights fixed):
#   python bench/probe_noise.py ~/long/runs/<DIR> --steps <STEP> ...
# When it has ended (the last snapshot holds the final weights), `finish` scores it once
# more (its last point is `evaluate` of the final weights), then `stvae evaluate`, `stvae
# figures` into FIGS, copies eval.json to REPORT-eval.json, and for a Bouncing MNIST run
# prints the probe spread's table (bench/probe_noise.py) and copies its final weights,
# config, metrics and segments (`publish`) to pretrained/bouncing-mnist-<model>-beta4/ (a
# run directory users load; write its README.md card by hand, with the spread);
# long/<run>/ is removed.
# Commit the reports and figures.
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
KEEP=(config.json checkpoint.safetensors metrics.jsonl segments.jsonl curve.json)
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
  git -C "$CLONE" rev-parse --short=7 HEAD > "$2/COMMIT"
}
publish() {  # RUN DEST: a finished run's final weights, config, metrics and segments
  mkdir -p "$2"
  for f in config.json model.safetensors metrics.jsonl segments.jsonl; do
    if [ -f "$1/$f" ]; then cp "$1/$f" "$2/$f"; fi
  done
}
run_spec() {  # NAME -> DIR (its run directory's name), CLONE, PIN (the clone's commit when
  # none is kept), REPORT, FIGS, TRAIN (its first command's flags), CURVE (curve's flags),
  # NOISE (its probe spread at the end), PUB (the pretrained folder, or none)
  case "$1" in
    hierarchical|slow)
      DIR="$1-f4-beta4-seed0" CLONE="$ROOT/stvae" PIN=56f7840 NOISE=1 CURVE=()
      REPORT=docs/results/bouncing-mnist-paper-cpu
      if [ "$1" != hierarchical ]; then  # beside the hierarchical run's curve
        CURVE=(--against "$REPORT.json") REPORT="$REPORT-$1"
      fi
      FIGS="docs/figures/bouncing-mnist-paper-cpu-$1-beta4"
      PUB="pretrained/bouncing-mnist-$1-beta4"
      TRAIN=(--preset paper --model "$1" --features 4 --beta 4 --seed 0
        --snapshot-every 1500 --checkpoint-every 200) ;;
    sprites-dsvae|sprites-hierarchical)
      local kind=${1#sprites-} extra=()
      if [ "$kind" = dsvae ]; then extra=(--posterior factorized); fi
      DIR="sprites-field-$kind-s256-t32-seed0" CLONE="$ROOT/stvae-sprites" NOISE=0 PUB=
      # the second run has a clone of its own, at the work tree's HEAD when it starts: its
      # training code is the first's (0c25497) plus segments.jsonl, which records the
      # machine and precision of each stretch of steps (the first run predates it)
      if [ "$kind" = hierarchical ]; then CLONE="$ROOT/stvae-sprites-hierarchical"; fi
      CURVE=(--judge)  # the second beside the first's curve, once it has one
      local first=docs/results/sprites-field-dsvae-long.json
      if [ "$kind" = hierarchical ] && [ -f "$REPO/$first" ]; then
        CURVE+=(--against "$first")
      fi  # the clone's commit, or the work tree's before it exists:
      PIN=$(git -C "$CLONE" rev-parse --short=7 HEAD 2>/dev/null \
        || git -C "$REPO" rev-parse --short=7 HEAD)
      REPORT="docs/results/sprites-field-$kind-long" FIGS="docs/figures/sprites-field-$kind-long"
      TRAIN=(--preset paper --data sprites-field --model "$kind" --features 288
        --static-features 256 "${extra[@]}" --beta 1 --seed 0 --batch-videos 100
        --steps 8750 --lr-decay-every 4000 --snapshot-every 875 --checkpoint-every 100) ;;
    chairs-hierarchical)
      DIR="chairs-hierarchical-f8-beta4-seed0" CLONE="$ROOT/stvae-chairs" NOISE=0 PUB=
      CURVE=(--beside docs/results/chairs-cpu.json)  # the grid's beta-4 runs beside it
      PIN=$(git -C "$CLONE" rev-parse --short=7 HEAD 2>/dev/null \
        || git -C "$REPO" rev-parse --short=7 HEAD)
      REPORT="docs/results/chairs-hierarchical-long" FIGS="docs/figures/chairs-hierarchical-long"
      TRAIN=(--preset paper --data chairs --model hierarchical --features 8 --beta 4 --seed 0
        --steps 10500 --lr-decay-every 3500 --snapshot-every 700 --checkpoint-every 200) ;;
    *)
      echo "unknown long run $1: hierarchical, slow, sprites-dsvae, sprites-hierarchical" \
        "or chairs-hierarchical" >&2
      exit 2 ;;
  esac
}
if [ "${1:-}" = score ] || [ "${1:-}" = finish ]; then
  NAME=${2:-hierarchical}
  run_spec "$NAME"
  RUN="$ROOT/runs/$DIR"
  if [ ! -d "$RUN" ]; then echo "no run at $RUN (start or restore it first)" >&2; exit 2; fi
  cd "$REPO"
  if pgrep -f "stvae train .*--out $RUN( |$)" >/dev/null; then
    if [ "$1" = finish ]; then
      echo "$RUN is still training: finish once it has ended" >&2
      exit 2
    fi
    export OMP_NUM_THREADS=1  # beside the trainer's two threads
  fi
  .venv/bin/stvae curve "$RUN" "${CURVE[@]}" --report "$REPORT" \
    --commit "$(git -C "$CLONE" rev-parse --short=7 HEAD)"
  if [ "$1" = finish ]; then
    .venv/bin/stvae evaluate "$RUN"
    .venv/bin/stvae figures "$RUN" --out "$FIGS"
    cp "$RUN/eval.json" "$REPORT-eval.json"
    if [ "$NOISE" = 1 ]; then
      last=$(basename "$(ls "$RUN"/snapshots/step-*.safetensors | tail -n 1)" .safetensors)
      .venv/bin/python bench/probe_noise.py "$RUN" --steps "$((10#${last#step-}))"
    fi
    if [ -n "$PUB" ]; then
      publish "$RUN" "$REPO/$PUB"
      echo "final weights in $REPO/$PUB (write its README.md card)" >&2
    fi
    rm -rf "$KEPT/$DIR"
    echo "$KEPT/$DIR removed" >&2
  fi
  exit 0
fi
if [ "${1:-}" = keep ]; then
  NAME=${2:-hierarchical}
  run_spec "$NAME"
  RUN="$ROOT/runs/$DIR"
  while pgrep -f "stvae train .*--out $RUN( |$)" >/dev/null; do
    keep_run "$RUN" "$KEPT/$DIR"
    sleep "${KEEP_EVERY:-600}"
  done
  keep_run "$RUN" "$KEPT/$DIR"
  exit 0
fi
if [ "${1:-}" = save ]; then
  NAME=${2:-hierarchical}
  run_spec "$NAME"
  RUN="$ROOT/runs/$DIR"
  pid=$(pgrep -f "stvae train .*--out $RUN( |$)" || true)
  if [ -n "$pid" ]; then
    kill -CONT $pid 2>/dev/null || true
    kill -TERM $pid
    while kill -0 $pid 2>/dev/null; do sleep 1; done
  fi
  dest="$KEPT/$DIR"
  keep_run "$RUN" "$dest"
  step=$(tail -n 1 "$RUN/metrics.jsonl" | grep -o '"step": [0-9]*')
  echo "kept $RUN in $dest (commit it); its step: $step"
  exit 0
fi
NAME=${1:-hierarchical}
run_spec "$NAME"
RUN="$ROOT/runs/$DIR"
kept="$KEPT/$DIR"
COMMIT=${2:-$(cat "$kept/COMMIT" 2>/dev/null || echo "$PIN")}
mkdir -p "$ROOT/runs"
if [ ! -d "$CLONE" ]; then
  git clone -q "$REPO" "$CLONE"
  git -C "$CLONE" checkout -q "$COMMIT"
fi
have=$(git -C "$CLONE" rev-parse --short=7 HEAD)
if [ "$have" != "${COMMIT:0:7}" ]; then
  echo "$CLONE is at $have, not $COMMIT: a run is never continued by other code" >&2
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
make -C "$CLONE" setup >/dev/null
if pgrep -f "stvae train .*--out $RUN( |$)" >/dev/null; then
  echo "already training: $RUN"
  exit 0
fi
cd "$CLONE"
if [ -f "$RUN/config.json" ]; then
  set -- train --resume --out "$RUN" --no-check
else
  set -- train "${TRAIN[@]}" --out "$RUN" --no-check
fi
# What `--keep-freed-memory` (stvae.hostmem) does, for clones from before it: glibc keeps
# freed memory for the next step (at the paper preset's batch, page faults were a large
# share of a step: docs/results/performance.md). A user's own malloc setting is kept.
if [[ "${GLIBC_TUNABLES:-}" != *glibc.malloc.* ]]; then
  export GLIBC_TUNABLES="glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647"
fi
nohup setsid nice -n 19 .venv/bin/stvae "$@" >> "$ROOT/$NAME.log" 2>&1 < /dev/null &
echo "training $RUN in process $! (log: $ROOT/$NAME.log)"
sleep 5  # the keeper stops when it finds no trainer
nohup setsid bash "$REPO/bench/paper_cpu_run.sh" keep "$NAME" > /dev/null 2>&1 < /dev/null &
echo "keeping it in $kept every ${KEEP_EVERY:-600} s (process $!); commit that folder"
