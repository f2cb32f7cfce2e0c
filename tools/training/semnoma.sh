#!/usr/bin/env bash
# Seed 004's shipped weights, as they were made (CPU, one thread per run, niced); see SEMNOMA.md.
# Stage 1 (teacher), then stage 2 (students, two at a time on two cores), then the per-SNR
# students and the refiner (three at a time).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p runs/noma
run() {  # name, then the trainer's flags; waits for the run to end
  name=$1; shift
  nice -n 10 .venv/bin/python tools/training/train_semnoma.py "$@" \
    --checkpoint runs/noma/$name.ckpt.safetensors --out runs/noma/semnoma-$name.safetensors >> runs/noma/$name.log 2>&1
}
T=runs/noma/semnoma-teacher.safetensors
S=${STUDENT_STEPS:-4000}
[ -f $T ] || run teacher --role teacher --steps 5000
run plain --role student --init $T --steps $S &
run student --role student --init $T --teacher $T --distill --steps $S &
wait
run snr5 --role student --init $T --steps $S --snr 5 5 &
run snr15 --role student --init $T --steps $S --snr 15 15 &
run refiner --role refiner --init runs/noma/semnoma-student.safetensors --steps ${REFINER_STEPS:-2000} &
wait
for name in teacher plain student snr5 snr15 refiner; do cp runs/noma/semnoma-$name.safetensors netsem/weights/; done
