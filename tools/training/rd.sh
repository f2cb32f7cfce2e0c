#!/usr/bin/env bash
# Rate-distortion fine-tuning of cnn-sem-impute at the rate points (lambda, quantizer step) of
# netsem.codecs.registry.RATE_POINTS (issue #16), on this machine's CPU: each starts from the
# shipped cnn-sem-impute weights, 2000 steps of 8 crops of 128x128 (~12 min on 2 cores), then its
# factorized prior is counted on the training latents. Weights land in $OUT (default runs/rd);
# copy NAME.safetensors and NAME.prior.safetensors to netsem/weights/ to ship them.
set -euo pipefail
OUT=${OUT:-runs/rd}
STEPS=${STEPS:-2000}
PHOTOS=${PHOTOS:-../shared/data/photos}
mkdir -p "$OUT"
for q in ${POINTS:-1 2 3}; do
    lmbda=$(.venv/bin/python -c "from netsem.codecs.registry import RATE_POINTS; print(RATE_POINTS[$q][0])")
    set -x
    .venv/bin/netsem train "cnn-sem-impute-q$q" --photos "$PHOTOS" --out "$OUT" --init netsem/weights/cnn-sem-impute.safetensors \
        --steps "$STEPS" --batch 8 --crop 128 --lr 2e-4 --warmup 100 --drop-apply 0.5 --drop-max 0.5 \
        --lmbda "$lmbda" --log-every 50 --seed 1
    { set +x; } 2>/dev/null
done
