#!/bin/bash
# phase 3: continue cnn and cnn-sem from the shipped weights (netsem/weights, step ~8.5k),
# cosine from 1e-4, bf16 autocast, drops 0.5/0.5. Two processes on the one GPU.
# A short calibration run (discarded) measures it/s so that the cosine ends near MAXS.
MAXS=${MAXS:-390}; CAL=${CAL:-20}
export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
NAMES="cnn cnn-sem"
mkdir -p /tmp/cal
for n in $NAMES; do
  python3 tools/train_codec.py $n --photos runs/photos --no-skimage --device cuda --amp \
    --steps 100000 --schedule constant --warmup 100 --lr 1e-4 --max-seconds $CAL \
    --init netsem/weights/$n.safetensors --out /tmp/cal > /tmp/cal/$n.stdout 2>&1 &
done
wait
RATE=$(python3 - <<'PY'
import re
rates=[]
for n in ("cnn","cnn-sem"):
    pts=[(int(m[0]),float(m[1])) for m in re.findall(r"step (\d+)/\d+ .*?elapsed (\d+)s", open(f"/tmp/cal/{n}.log").read())]
    if len(pts)>=3 and pts[-1][1]>pts[0][1]:
        rates.append((pts[-1][0]-pts[0][0])/(pts[-1][1]-pts[0][1]))
    else:
        rates.append(float(re.findall(r"([\d.]+) it/s", open(f"/tmp/cal/{n}.log").read())[-1]))
print(f"{min(rates):.2f}")
PY
)
N=$(python3 -c "print(int($RATE*0.95*($MAXS-15)/100)*100)")
echo "calibration: $(grep -h 'it/s' /tmp/cal/*.log | tail -n 2 | tr '\n' ' ')"
echo "rate $RATE it/s per process -> steps $N, max-seconds $MAXS"
for n in $NAMES; do
  CMD="python3 tools/train_codec.py $n --photos runs/photos --no-skimage --device cuda --amp --steps $N --schedule cosine --warmup 100 --lr 1e-4 --drop-apply 0.5 --drop-max 0.5 --max-seconds $MAXS --init netsem/weights/$n.safetensors --out $OUT"
  echo "$CMD" | tee -a $OUT/commands.txt
  $CMD > $OUT/$n.stdout 2>&1 &
done
while [ -n "$(jobs -r)" ]; do
  sleep 60
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  for n in $NAMES; do echo "$n: $(tail -n1 $OUT/$n.stdout | cut -c1-150)"; done
done
wait
for n in $NAMES; do tail -n 3 $OUT/$n.log; done
ls -la $OUT
