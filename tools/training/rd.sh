#!/usr/bin/env bash
# Rate-distortion fine-tuning of cnn-sem-impute at the rate points (lambda, quantizer step) of
# netsem.codecs.registry.RATE_POINTS (issue #16), on this machine's CPU: q1..q3 start from the
# shipped cnn-sem-impute weights, 2000 steps of 8 crops of 128x128 (~12 min each on 2 cores); q0
# starts from q1's (the q1 shipped then), 3000 steps on one thread (~45 min): their first phases,
# $OUT/qN-phase1. Weights land in $OUT (default runs/rd) as cnn-sem-impute-qN.safetensors; copy it to
# netsem/weights/ and count its prior (tools/training/fit_prior.py --codec NAME) to ship it.
# q4 (8x down, the highest rate; POINTS=4) starts from the shipped q3 with one stride-2 stage removed from each
# side (tools/training/remove_stage.py): 1421 steps at lambda 0.03, 5500 at 0.015 on 2 threads (~50 min; the
# q4 shipped until this version), a phase on the wider photograph set (tools/training/wide_photos.sh: 3000
# steps at 0.015 on one thread, stopped at its checkpoint after 1660 steps, step 40896: $OUT/q4-wide), then
# 1500 steps at its lambda, 0.04, with the decoder trained on the rounded latent (--quant mixed) and the rate
# proxy at 50x the learning rate, one thread (~53 min beside another training). (The first phase was a
# 7000-step run at 0.03 stopped at its checkpoint after 1421 steps, when its rate stayed near 3 bpp: --stop-after
# replays such cuts.)
# q1, q2 and q3 then go on with q5's recipe (below: the wide set, the rate proxy at 50x, mixed quantization):
# 1500 steps at their own lambdas, one thread (38-62 min beside other work); each then 2000 steps more at Adam 1e-4
# (its recipe phase kept as $OUT/qN-recipe; 42-70 min on one thread beside other work).
# q5 (8x down, quantizer step 2; POINTS=5) and q6 (POINTS=6) are that last phase at their own lambdas, 0.015
# and 0.008, from the same q4-wide (kept in $OUT: POINTS="4 5 6" trains the phases before it once; ~30 min
# each; each ran beside a control, see tools/training/README.md). q7 (POINTS=7: quantizer step 4, lambda
# 0.004) is that last phase again from q6's (1500 steps, one thread, ~43 min beside other work). Each of q4..q7
# then goes on for 3000 steps at Adam 1e-4 (its phase before is kept as $OUT/qN-phase1, q4's as $OUT/q4-recipe):
# q6 on both cores (~35 min), q5 and q7 on one thread (~65-100 min beside other work); q4's was cut at its
# checkpoint after 2290 steps (for time) and finished by 710 steps from Adam 1.7e-5, where its cosine stood
# (--stop-after replays the cut; close to the uninterrupted run, not the same).
set -euo pipefail
OUT=${OUT:-runs/rd}
PHOTOS=${PHOTOS:-../shared/data/photos}
mkdir -p "$OUT"
train() {  # NAME INIT STEPS LAMBDA SEED [more options, e.g. --threads N]
    # q0..q3 and q4's phases before its last trained with the rate proxy at the network's learning rate (1x);
    # the more options come last, so they override these (click keeps an option's last value)
    set -x
    .venv/bin/netsem train "$1" --photos "$PHOTOS" --out "$OUT" --init "$2" \
        --steps "$3" --batch 8 --crop 128 --lr 2e-4 --warmup 100 --drop-apply 0.5 --drop-max 0.5 \
        --lmbda "$4" --log-every 50 --seed "$5" --rate-lr-scale 1 "${@:6}"
    { set +x; } 2>/dev/null
}
first_phase() {  # q0..q3's first phase (the proxy at 1x, the 19 shared photographs): $OUT/qN-phase1.safetensors
    local q=$1 lmbda init steps threads
    lmbda=$(.venv/bin/python -c "from netsem.codecs.registry import RATE_POINTS; print(RATE_POINTS[$q].lmbda)")
    if [ "$q" = 0 ]; then  # from q1's first phase, the q1 shipped when q0 was trained
        [ -f "$OUT/q1-phase1.safetensors" ] || first_phase 1
        init="$OUT/q1-phase1.safetensors"; steps=${STEPS:-3000}; threads=(--threads 1)
    else
        init=netsem/weights/cnn-sem-impute.safetensors; steps=${STEPS:-2000}; threads=()
    fi
    train "cnn-sem-impute-q$q" "$init" "$steps" "$lmbda" 1 "${threads[@]}"
    mv "$OUT/cnn-sem-impute-q$q.safetensors" "$OUT/q$q-phase1.safetensors"
}
q4_phases() {  # the q4 shipped until q4's last phase, then its phase on the wide set: $OUT/q4-wide.safetensors
    [ -f "$OUT/q4-wide.safetensors" ] && return
    if [ ! -f "$OUT/q4-phase2.safetensors" ]; then
        [ -f "$OUT/q3-phase1.safetensors" ] || first_phase 3  # the q3 q4 came from: before its wide-set phase
        .venv/bin/python tools/training/remove_stage.py "$OUT/q3-phase1.safetensors" \
            "$OUT/q4-init.safetensors" --set quant_step=1
        train cnn-sem-impute-q4 "$OUT/q4-init.safetensors" 7000 0.03 1 --stop-after 1421
        mv "$OUT/cnn-sem-impute-q4.safetensors" "$OUT/q4-phase1.safetensors"
        train cnn-sem-impute-q4 "$OUT/q4-phase1.safetensors" "${STEPS:-5500}" 0.015 2
        mv "$OUT/cnn-sem-impute-q4.safetensors" "$OUT/q4-phase2.safetensors"
    fi
    PHOTOS=$WIDE train cnn-sem-impute-q4 "$OUT/q4-phase2.safetensors" 3000 0.015 3 \
        --lr 1e-4 --threads 1 --stop-after 1660
    mv "$OUT/cnn-sem-impute-q4.safetensors" "$OUT/q4-wide.safetensors"
}
WIDE=${WIDE:-runs/photos-wide}
recipe_phase() {  # q4..q7's phase with q5's recipe (the wide set, the rate proxy at 50x, the decoder on the
    # rounded latent): $OUT/qN-phase1.safetensors (q4's: $OUT/q4-recipe.safetensors)
    local q=$1 lmbda init seed
    lmbda=$(.venv/bin/python -c "from netsem.codecs.registry import RATE_POINTS; print(RATE_POINTS[$q].lmbda)")
    [ -d "$WIDE" ] || OUT="$WIDE" bash tools/training/wide_photos.sh
    if [ "$q" = 7 ]; then  # from q6's (the run was named q5, with --set quant_step=4)
        [ -f "$OUT/q6-phase1.safetensors" ] || recipe_phase 6
        init="$OUT/q6-phase1.safetensors"; seed=7
    else
        q4_phases
        init="$OUT/q4-wide.safetensors"; seed=5
        [ "$q" = 4 ] && seed=4
    fi
    PHOTOS=$WIDE train "cnn-sem-impute-q$q" "$init" 1500 "$lmbda" "$seed" --threads 1 --quant mixed \
        --rate-lr-scale 50
    case "$q" in
        4) mv "$OUT/cnn-sem-impute-q4.safetensors" "$OUT/q4-recipe.safetensors" ;;
        *) mv "$OUT/cnn-sem-impute-q$q.safetensors" "$OUT/q$q-phase1.safetensors" ;;
    esac
}
for q in ${POINTS:-1 2 3 0}; do
    lmbda=$(.venv/bin/python -c "from netsem.codecs.registry import RATE_POINTS; print(RATE_POINTS[$q].lmbda)")
    if [ "$q" -ge 4 ]; then  # the recipe's phase, then 3000 steps more of it at half the learning rate
        first="$OUT/q$q-phase1.safetensors"; [ "$q" = 4 ] && first="$OUT/q4-recipe.safetensors"
        [ -f "$first" ] || recipe_phase "$q"
        threads=1; [ "$q" = 6 ] && threads=2
        long=(--threads "$threads" --quant mixed --rate-lr-scale 50)
        if [ "$q" = 4 ]; then  # cut after 2290 steps, then the rest of its cosine from where it stood
            PHOTOS=$WIDE train cnn-sem-impute-q4 "$first" 3000 "$lmbda" 4 "${long[@]}" --lr 1e-4 --stop-after 2290
            mv "$OUT/cnn-sem-impute-q4.safetensors" "$OUT/q4-cut.safetensors"
            PHOTOS=$WIDE train cnn-sem-impute-q4 "$OUT/q4-cut.safetensors" 710 "$lmbda" 4 "${long[@]}" --lr 1.7e-5 \
                --warmup 20
        else
            PHOTOS=$WIDE train "cnn-sem-impute-q$q" "$first" 3000 "$lmbda" "$q" "${long[@]}" --lr 1e-4
        fi
        continue
    fi
    [ -f "$OUT/q$q-phase1.safetensors" ] || first_phase "$q"
    case "$q" in
        1|2|3)  # then q5's recipe on the wide set, from that phase
            [ -d "$WIDE" ] || OUT="$WIDE" bash tools/training/wide_photos.sh
            PHOTOS=$WIDE train "cnn-sem-impute-q$q" "$OUT/q$q-phase1.safetensors" 1500 "$lmbda" "$q" --threads 1 \
                --quant mixed --rate-lr-scale 50
            # then 2000 steps more of it at half the learning rate
            mv "$OUT/cnn-sem-impute-q$q.safetensors" "$OUT/q$q-recipe.safetensors"
            PHOTOS=$WIDE train "cnn-sem-impute-q$q" "$OUT/q$q-recipe.safetensors" 2000 "$lmbda" "$q" --threads 1 \
                --quant mixed --rate-lr-scale 50 --lr 1e-4
            ;;
        *) cp "$OUT/q$q-phase1.safetensors" "$OUT/cnn-sem-impute-q$q.safetensors" ;;
    esac
done
