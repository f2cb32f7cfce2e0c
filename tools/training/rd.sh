#!/usr/bin/env bash
# Rate-distortion fine-tuning of cnn-sem-impute at the rate points (lambda, quantizer step) of
# netsem.codecs.registry.RATE_POINTS (issue #16), on this machine's CPU: q1..q3 start from the
# shipped cnn-sem-impute weights, 2000 steps of 8 crops of 128x128 (~12 min each on 2 cores); q0
# starts from the shipped q1, 3000 steps on one thread (~45 min). Weights land in $OUT (default
# runs/rd); copy NAME.safetensors to netsem/weights/ and count its prior
# (tools/training/fit_prior.py --codec NAME) to ship it.
# q4 (8x down, above the default's rate; POINTS=4) starts from the shipped q3 with one stride-2
# stage removed from each side (tools/training/remove_stage.py), 1421 steps at lambda 0.03 and then
# 5500 at its own lambda, 0.015, on 2 threads (~50 min in all). (The shipped q4's first phase was a
# 7000-step run at 0.03 stopped at its checkpoint after 1421 steps, when its rate stayed near 3 bpp:
# its learning rate had hardly decayed, where --steps 1421 decays it fully; close, not the same.)
set -euo pipefail
OUT=${OUT:-runs/rd}
PHOTOS=${PHOTOS:-../shared/data/photos}
mkdir -p "$OUT"
train() {  # NAME INIT STEPS LAMBDA SEED [--threads N]
    set -x
    .venv/bin/netsem train "$1" --photos "$PHOTOS" --out "$OUT" --init "$2" \
        --steps "$3" --batch 8 --crop 128 --lr 2e-4 --warmup 100 --drop-apply 0.5 --drop-max 0.5 \
        --lmbda "$4" --log-every 50 --seed "$5" "${@:6}"
    { set +x; } 2>/dev/null
}
for q in ${POINTS:-1 2 3 0}; do
    if [ "$q" = 4 ]; then
        .venv/bin/python tools/training/remove_stage.py netsem/weights/cnn-sem-impute-q3.safetensors \
            "$OUT/q4-init.safetensors" --set quant_step=1
        train cnn-sem-impute-q4 "$OUT/q4-init.safetensors" 1421 0.03 1
        mv "$OUT/cnn-sem-impute-q4.safetensors" "$OUT/q4-phase1.safetensors"
        train cnn-sem-impute-q4 "$OUT/q4-phase1.safetensors" "${STEPS:-5500}" 0.015 2
        continue
    fi
    lmbda=$(.venv/bin/python -c "from netsem.codecs.registry import RATE_POINTS; print(RATE_POINTS[$q].lmbda)")
    if [ "$q" = 0 ]; then
        init=netsem/weights/cnn-sem-impute-q1.safetensors; steps=${STEPS:-3000}; threads=(--threads 1)
    else
        init=netsem/weights/cnn-sem-impute.safetensors; steps=${STEPS:-2000}; threads=()
    fi
    train "cnn-sem-impute-q$q" "$init" "$steps" "$lmbda" 1 "${threads[@]}"
done
