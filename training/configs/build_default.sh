#!/usr/bin/env bash
# Rebuilds the bundled M2PEnc (stm2pe_core/assets/m2penc_default.safetensors) from nothing:
# synthetic corpus (music synth + choreography teacher) -> stage-1 training -> stage-2 fine-tune
# (joint-speed loss) -> motion-gain calibration on the training split -> fp16 file.
# One GPU, about 5 minutes (16 CPU workers for the corpus, 3 minutes of training). Usage, from the repository root:
#   bash training/configs/build_default.sh [OUT_DIR]
# Env: CORPUS (default runs/corpus), WORKERS (16), EXTRA (extra training songs, 0 = as bundled),
#      EXTRA_TIMEOUT (s, 150), CONFIG (training/configs/stage1_default.yaml), SET (extra --set args)
set -euo pipefail
OUT=${1:-runs/default_build}
CORPUS=${CORPUS:-runs/corpus}
WORKERS=${WORKERS:-16}
EXTRA=${EXTRA:-0}
CONFIG=${CONFIG:-training/configs/stage1_default.yaml}
mkdir -p "$OUT"
t0=$(date +%s)
# 1. corpus: 128 training songs + 16 held-out songs (held-out styles and tempo bands), 20-40 s each
[ -f "$CORPUS/train/manifest.json" ] || python -m training sdgpip --synth 128 --split train --seed 0 --min-seconds 20 --max-seconds 40 --out "$CORPUS/train" --workers "$WORKERS"
[ -f "$CORPUS/heldout/manifest.json" ] || python -m training sdgpip --synth 16 --split heldout --seed 0 --min-seconds 20 --max-seconds 40 --out "$CORPUS/heldout" --workers "$WORKERS"
# more training songs (another seed); a run cut by the timeout writes no manifest and is ignored
if [ "$EXTRA" -gt 0 ] && [ ! -f "$CORPUS/train_extra/manifest.json" ]; then
  timeout "${EXTRA_TIMEOUT:-150}" python -m training sdgpip --synth "$EXTRA" --split train --seed 1 --min-seconds 20 --max-seconds 40 --out "$CORPUS/train_extra" --workers "$WORKERS" --songs-per-shard 4 \
    || echo "extra corpus not finished; training on the rest"
fi
echo "corpus ready after $(( $(date +%s) - t0 )) s"
# 2. stage-1 training (time-boxed by train.max_minutes in the config)
python -m training train --config "$CONFIG" --set "data.corpus=$CORPUS" --set "train.output_dir=$OUT/run" ${SET:-}
# 3. fp16 export of stage 1
python -m training export --checkpoint "$OUT/run" --out "$OUT/m2penc_stage1.safetensors" --fp16 \
  --notes "bash training/configs/build_default.sh (corpus: 128+${EXTRA} train songs seed 0/1, 16 held-out; $CONFIG)"
# 4. stage 2: short fine-tune from the stage-1 file with the joint-speed loss on (40 steps of 8 clips,
#    fp32; ~10 min on 2 CPU cores, seconds on a GPU), then the fp16 export
python -m training train --config training/configs/stage1_finetune_cpu.yaml --init "$OUT/m2penc_stage1.safetensors" \
  --set "data.corpus=$CORPUS" --set "train.output_dir=$OUT/finetune"
python -m training export --checkpoint "$OUT/finetune" --out "$OUT/m2penc_stage2.safetensors" --fp16 \
  --notes "stage 2: training/configs/stage1_finetune_cpu.yaml --init m2penc_stage1.safetensors"
# 5. de-averaging calibration fitted on the training split (motion gain + joint-angle caps in the config)
python -m training calibrate --checkpoint "$OUT/m2penc_stage2.safetensors" --corpus "$CORPUS" --limit 16 --fp16 \
  --out "$OUT/m2penc_default.safetensors" --notes "calibrated: python -m training calibrate --limit 16"
echo "done after $(( $(date +%s) - t0 )) s"
