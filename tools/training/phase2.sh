#!/bin/bash
# phase 2: resume from phase 1, cosine decay, bf16 autocast, heavier channel drops for cnn*
SECS=${SECS:-500}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p /tmp/tr
declare -A ARGS=(
 [cnn]="--steps 4300 --drop-apply 0.7 --drop-max 0.6"
 [cnn-sem]="--steps 4300 --drop-apply 0.7 --drop-max 0.6"
 [cnn-scale]="--steps 4300 --drop-apply 0.7 --drop-max 0.6"
 [cnn-bcast]="--steps 4300 --drop-apply 0.7 --drop-max 0.6"
 [cnn-sem-masked]="--steps 4300 --drop-apply 0.7 --drop-max 0.6"
 [cnn-p0]="--steps 4800"
 [cnn-sem-p0]="--steps 4800"
 [swin]="--steps 2300"
 [swin-p0]="--steps 2400"
)
NAMES="cnn cnn-sem swin cnn-sem-masked cnn-scale cnn-bcast cnn-p0 cnn-sem-p0 swin-p0"
for n in $NAMES; do
  python3 tools/train_codec.py $n --photos runs/photos --no-skimage --device ${DEV:-cuda} --amp \
     ${ARGS[$n]} --schedule cosine --warmup 200 --max-seconds $SECS --init runs/gpu/init/$n.safetensors \
     --out /tmp/tr $EXTRA > /tmp/tr/$n.stdout 2>&1 &
done
while [ -n "$(jobs -r)" ]; do
  sleep ${POLL:-60}
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  for n in $NAMES; do echo "$n: $(tail -n1 /tmp/tr/$n.stdout | cut -c1-150)"; done
done
wait
cd /tmp/tr
tar cf $OUT/a.tar cnn.safetensors cnn-sem.safetensors swin.safetensors
tar cf $OUT/b.tar cnn-sem-masked.safetensors cnn-scale.safetensors cnn-bcast.safetensors
tar cf $OUT/c.tar cnn-p0.safetensors cnn-sem-p0.safetensors swin-p0.safetensors
tar cf $OUT/logs.tar *.log *.stdout
ls -la $OUT
