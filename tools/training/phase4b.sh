#!/bin/bash
# phase 4b: continue the seven 60-channel CNN codecs of phase 4 (recipe X: channel drops on half
# the samples at U(0, 0.5); cnn-sem-masked: mixed drops; p0: none) with a second cosine from 5e-5.
# Weights of phase 4 are expected in $INIT (runs/p4/gpu1/X, carried to the GPU machine).
# No calibration run: phase 4 ran 10 processes at ~7.9 it/s each (~79 it/s in all), so 7 get
# ~11 it/s and N=4000 steps end inside MAXS (the time limit stays as a guard).
set -o pipefail
MAXS=${MAXS:-400}; N=${N:-4000}; DEV=${DEV:-cuda}; EXTRA=${EXTRA:-}; SEEDS=${SEEDS:-5}
AMP=${AMP:---amp --channels-last}; EVAL_ARGS=${EVAL_ARGS:-}; INIT=${INIT:-runs/p4/gpu1/X}
export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
P=runs/photos
NAMES=${NAMES:-"cnn-sem cnn cnn-scale cnn-bcast cnn-sem-masked cnn-p0 cnn-sem-p0"}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
t0=$(date +%s); rm -f /tmp/eval-*.txt
for n in $NAMES; do
  mkdir -p $OUT/B
  CMD="python3 tools/train_codec.py $n --photos $P --no-skimage --device $DEV $AMP $EXTRA --drop-apply 0.5 --drop-max 0.5 --init $INIT/$n.safetensors --steps $N --schedule cosine --warmup 100 --lr 5e-5 --max-seconds $MAXS --out $OUT/B"
  echo "$CMD" | tee -a $OUT/commands.txt
  $CMD > $OUT/B/$n.stdout 2>&1 &
done
while [ -n "$(jobs -r)" ]; do
  sleep 60
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
  for f in $OUT/B/*.log; do echo "$f: $(tail -n1 $f | cut -c1-110)"; done
done
wait
echo "trained ($(( $(date +%s) - t0 ))s)"
for f in $OUT/B/*-p0.safetensors; do
  CMD="python3 tools/training/slice_channels.py $f $f --channels 60 --photos $P --device $DEV"
  echo "$CMD" | tee -a $OUT/commands.txt
  $CMD &
done
wait
set -- $(ls $OUT/B/*.safetensors)
while [ $# -gt 0 ]; do
  python3 tools/training/quick_eval.py $1 $2 --device $DEV --seeds $SEEDS $EVAL_ARGS > /tmp/eval-$#.txt 2>&1 &
  shift; [ $# -gt 0 ] && shift
done
wait
cat /tmp/eval-*.txt | awk '!seen[$0]++' | tee $OUT/quick_eval.txt
echo "evaluated ($(( $(date +%s) - t0 ))s)"
cd $OUT && tar czf logs.tgz B/*.log B/*.stdout commands.txt quick_eval.txt
i=0; set -- $(ls B/*.safetensors)
while [ $# -gt 0 ]; do
  i=$((i + 1)); tar cf weights$i.tar ${@:1:3}; shift 3 2>/dev/null || set --
done
rm -rf B commands.txt quick_eval.txt
ls -la
