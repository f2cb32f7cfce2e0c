#!/bin/bash
# phase 1: constant LR, time-limited; all codecs in parallel on the one GPU
SECS=${SECS:-500}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch,safetensors,skimage,click,rich,numpy,PIL;print('torch',torch.__version__,'cuda',torch.cuda.is_available(),'skimage',skimage.__version__,'numpy',numpy.__version__,'PIL',PIL.__version__)"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p /tmp/tr
NAMES="cnn cnn-sem swin cnn-sem-masked cnn-scale cnn-bcast cnn-p0 cnn-sem-p0 swin-p0"
for n in $NAMES; do
  python3 tools/train_codec.py $n --photos runs/photos --no-skimage --device ${DEV:-cuda} \
     --steps 100000 --schedule constant --max-seconds $SECS --out /tmp/tr $EXTRA > /tmp/tr/$n.stdout 2>&1 &
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
