#!/usr/bin/env bash
# The project's single GPU session: trains the embedded default model on the GPU in the background
# while the CUDA kernels build and the CUDA tests run, then runs every GPU benchmark with the GPU to
# itself (benchmarks/gpu_check.sh). Everything worth keeping lands in $OUT.
#
#   OUT=/some/dir bash benchmarks/gpu_session.sh [TRAIN_SECONDS]
#
# Needs the MIT-licensed `gan_face_generate` package for the training faces; on a machine without
# it, copy its folder to .device/site/ (put .device/ in carry) — it is found there.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
TRAIN_SECONDS=${1:-270}
export PYTHONPATH=$PWD:$PWD/.device/site${PYTHONPATH:+:$PYTHONPATH}
export BENDER_CACHE_DIR=${BENDER_CACHE_DIR:-/tmp/bender-cache} PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/default-model}
mkdir -p "$WORK" "$OUT"

train_default_model() {
  set -x
  "$PY" -m bender.demo.faces --out "$WORK/faces" --count "${FACES:-20000}" --seed 0 || return 1
  "$PY" -m bender dataset pack "$WORK/faces" --out "$WORK/faces64.zip" --resolution 64 -q || return 1
  # Reference ops: the kernels are being built (and tested for the first time) beside it.
  BENDER_OPS=ref "$PY" -m bender train --data "$WORK/faces64.zip" --out "$WORK/runs" --preset scratch --channel-base 4096 \
    --channel-max 128 --z-dim 128 --w-dim 128 --map-layers 4 --num-fp16-res 2 --conv-clamp 256 \
    --batch 64 --kimg 100000 --snap 100 --tick 15 --seed 0 &
  local pid=$!
  local deadline=$((SECONDS + TRAIN_SECONDS))
  while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 2; done
  for run in "$WORK"/runs/*/; do touch "${run}STOP"; done  # the trainer writes a last snapshot, stops
  wait $pid
}

( train_default_model ) > "$OUT/default_model.log" 2>&1 &
TRAIN_PID=$!
BENCH_AFTER_PID=$TRAIN_PID GPU_CHECK_BUDGET=${GPU_CHECK_BUDGET:-520} bash benchmarks/gpu_check.sh
wait $TRAIN_PID

# Bring back the trained model (split: returned files are capped at 16 MiB), its last preview and stats.
RUN=$(ls -d "$WORK"/runs/*/ 2>/dev/null | head -n 1)
if [ -n "$RUN" ]; then
  SNAP=$(ls "$RUN"checkpoints/snapshot-*.safetensors | sort | tail -n 1)
  split -b 15m -d "$SNAP" "$OUT/default-model.part"
  cp "$(ls "$RUN"previews/*.png | sort | tail -n 1)" "$OUT/default-model-preview.png"
  cp "$RUN"stats.jsonl "$OUT/default-model-stats.jsonl"
  tail -n 5 "$OUT/default_model.log"
  echo "default model: $SNAP -> $OUT/default-model.part*"
fi
tar -czf "$OUT/gpu_check_logs.tgz" -C "$OUT" gpu_check 2>/dev/null && rm -rf "$OUT/gpu_check"
ls -la "$OUT"
