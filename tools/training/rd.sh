#!/usr/bin/env bash
# Rate-distortion fine-tuning of cnn-sem-impute at the rate points (lambda, quantizer step) of
# netsem.codecs.registry.RATE_POINTS (issue #16), on this machine's CPU: q1..q3 start from the
# shipped cnn-sem-impute weights, 2000 steps of 8 crops of 128x128 (~12 min each on 2 cores); q0
# starts from the shipped q1, 3000 steps on one thread (~45 min). Weights land in $OUT (default
# runs/rd); copy NAME.safetensors to netsem/weights/ and count its prior
# (tools/training/fit_prior.py --codec NAME) to ship it.
set -euo pipefail
OUT=${OUT:-runs/rd}
PHOTOS=${PHOTOS:-../shared/data/photos}
mkdir -p "$OUT"
for q in ${POINTS:-1 2 3 0}; do
    lmbda=$(.venv/bin/python -c "from netsem.codecs.registry import RATE_POINTS; print(RATE_POINTS[$q][0])")
    if [ "$q" = 0 ]; then
        init=netsem/weights/cnn-sem-impute-q1.safetensors; steps=${STEPS:-3000}; threads=(--threads 1)
    else
        init=netsem/weights/cnn-sem-impute.safetensors; steps=${STEPS:-2000}; threads=()
    fi
    set -x
    .venv/bin/netsem train "cnn-sem-impute-q$q" --photos "$PHOTOS" --out "$OUT" --init "$init" \
        --steps "$steps" --batch 8 --crop 128 --lr 2e-4 --warmup 100 --drop-apply 0.5 --drop-max 0.5 \
        --lmbda "$lmbda" --log-every 50 --seed 1 "${threads[@]}"
    { set +x; } 2>/dev/null
done
