#!/bin/bash
# phase 5: the 60-channel CNN codecs with seed 003's erasure model at the receiver (lost channels
# are zeros, received ones scaled by channels / received: `rescale`), continued from phase 4:
#   cnn-sem        from phase 4's rescale probe (runs/p4/gpu1/R), drops on every sample, U(0, 0.5)
#   cnn, cnn-scale, cnn-bcast   from phase 4b with the imputer removed (slice_channels.py --set
#                  impute=false --set rescale=true), drops on every sample, U(0, 0.5)
#   cnn-sem-masked from phase 4b, imputer removed, mixed drops on half the samples
#   cnn-sem (probe Q)  drops on 3/4 of the samples, U(0, 0.6): the lossless/robust trade-off
# The -p0 codecs need no training (no drops: their imputer was never used); cnn-sem-impute is
# phase 4b's cnn-sem as it was. Init files in $INIT (runs/p5/init, carried to the GPU machine).
set -o pipefail
MAXS=${MAXS:-360}; N=${N:-6000}; DEV=${DEV:-cuda}; SEEDS=${SEEDS:-5}; INIT=${INIT:-runs/p5/init}
export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
P=runs/photos
JOBS=${JOBS:-"A:cnn-sem:1.0:0.5 A:cnn:1.0:0.5 A:cnn-scale:1.0:0.5 A:cnn-bcast:1.0:0.5 A:cnn-sem-masked:0.5:0.5 Q:cnn-sem:0.75:0.6"}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
t0=$(date +%s); rm -f /tmp/eval-*.txt
for j in $JOBS; do
  IFS=: read -r lab n ap mx <<< "$j"
  mkdir -p $OUT/$lab
  CMD="python3 tools/train_codec.py $n --photos $P --no-skimage --device $DEV --amp --drop-apply $ap --drop-max $mx --init $INIT/$n.safetensors --steps $N --schedule cosine --warmup 100 --lr 5e-5 --max-seconds $MAXS --out $OUT/$lab"
  echo "$CMD" | tee -a $OUT/commands.txt
  $CMD > $OUT/$lab/$n.stdout 2>&1 &
done
while [ -n "$(jobs -r)" ]; do
  sleep 60
  for f in $OUT/*/*.log; do echo "$f: $(tail -n1 $f | cut -c1-110)"; done
done
wait
echo "trained ($(( $(date +%s) - t0 ))s)"
set -- $(ls $OUT/*/*.safetensors)
while [ $# -gt 0 ]; do
  python3 tools/training/quick_eval.py $1 $2 --device $DEV --seeds $SEEDS > /tmp/eval-$#.txt 2>&1 &
  shift; [ $# -gt 0 ] && shift
done
wait
cat /tmp/eval-*.txt | awk '!seen[$0]++' | tee $OUT/quick_eval.txt
echo "evaluated ($(( $(date +%s) - t0 ))s)"
cd $OUT && tar czf logs.tgz */*.log */*.stdout commands.txt quick_eval.txt
i=0; set -- $(ls */*.safetensors)
while [ $# -gt 0 ]; do
  i=$((i + 1)); tar cf weights$i.tar ${@:1:3}; shift 3 2>/dev/null || set --
done
rm -rf */ commands.txt quick_eval.txt
ls -la
