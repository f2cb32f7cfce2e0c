#!/bin/bash
# phase 4: 60-channel CNN codecs (1.406 bpp at 768x512) whose receiver imputes lost channels.
# Run from the repository root on the GPU machine with OUT set (see README.md here):
#   1. slice every shipped 64-channel CNN codec to 60 channels (tools/training/slice_channels.py:
#      keeps the 60 channels whose loss costs most, starts the imputer from the latent's
#      channel covariance) -> /tmp/p4init
#   2. a short calibration run of every job at once (discarded) measures it/s, so that the
#      cosine schedule ends near MAXS; it also checks every job runs on this machine
#   3. all jobs in parallel on the one GPU, time-limited (MAXS), bf16 autocast, NHWC
#   4. p0 codecs (trained without losses, so their imputer is never trained) get their
#      imputer recomputed from the trained latent's covariance
#   5. quick GPU evaluation (tools/training/quick_eval.py: channel loss 0..40 %, the four
#      evaluation photographs, 5 seeds) and the weights tarred to $OUT
# Jobs: "label codec drop-apply drop-max extra-options"; recipe X is the one shipped for every
# codec, Y (lighter drops) and R (inverted-dropout rescale instead of imputation) are probes.
set -o pipefail
MAXS=${MAXS:-390}; CAL=${CAL:-25}; DEV=${DEV:-cuda}; EXTRA=${EXTRA:-}; SEEDS=${SEEDS:-5}
AMP=${AMP:---amp --channels-last}; EVAL_ARGS=${EVAL_ARGS:-}
export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
W=${W:-netsem/weights}; I=/tmp/p4init; P=runs/photos  # W: the 64-channel weights of phases 1-3
mkdir -p $I/rescale /tmp/cal
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
JOBS=${JOBS:-"X:cnn-sem:0.5:0.5: X:cnn:0.5:0.5: Y:cnn-sem:0.25:0.5: Y:cnn:0.25:0.5:
R:cnn-sem:1.0:0.5:rescale X:cnn-scale:0.5:0.5: X:cnn-bcast:0.5:0.5: X:cnn-sem-masked:0.5:0.5:
X:cnn-p0:0.5:0.5: X:cnn-sem-p0:0.5:0.5:"}

t0=$(date +%s)
for n in cnn cnn-sem cnn-scale cnn-bcast cnn-sem-masked cnn-p0 cnn-sem-p0; do
  python3 tools/training/slice_channels.py $W/$n.safetensors $I/$n.safetensors --channels 60 \
    --set impute=true --photos $P --device $DEV &
done
python3 tools/training/slice_channels.py $W/cnn-sem.safetensors $I/rescale/cnn-sem.safetensors \
  --channels 60 --set rescale=true --photos $P --device $DEV &
wait
echo "sliced in $(( $(date +%s) - t0 ))s"

args() {  # label codec apply max extra -> trainer options (without steps/schedule/out)
  local init=$I/$2.safetensors set=""
  if [ "$5" = rescale ]; then init=$I/rescale/$2.safetensors; set="--set impute=false --set rescale=true"; fi
  echo "$2 --photos $P --no-skimage --device $DEV $AMP $EXTRA --drop-apply $3 --drop-max $4 $set --init $init"
}

for j in $JOBS; do
  IFS=: read -r lab n ap mx ex <<< "$j"
  python3 tools/train_codec.py $(args $lab $n $ap $mx $ex) --steps 100000 --schedule constant \
    --warmup 100 --lr 1e-4 --log-every 20 --max-seconds $CAL --out /tmp/cal/$lab > /tmp/cal/$lab-$n.stdout 2>&1 &
done
wait
RATE=$(python3 - <<'PY'
import glob, re
rates = []
for f in glob.glob("/tmp/cal/*/*.log"):
    pts = [(int(a), float(b)) for a, b in re.findall(r"step (\d+)/\d+ .*?elapsed (\d+)s", open(f).read())]
    if len(pts) >= 3 and pts[-1][1] > pts[1][1]:
        rates.append((pts[-1][0] - pts[1][0]) / (pts[-1][1] - pts[1][1]))
    else:
        print(f"calibration of {f} gave {pts}", file=__import__("sys").stderr)
print(f"{min(rates):.2f}" if rates else "0")
PY
)
for f in /tmp/cal/*.stdout; do grep -q "done:" $f || { echo "CALIBRATION FAILED: $f"; tail -n 5 $f; }; done
echo "calibration ($(( $(date +%s) - t0 ))s): $(for f in /tmp/cal/*/*.log; do echo -n "$f $(grep -o '[0-9.]* it/s' $f | tail -n1); "; done)"
N=$(python3 -c "print(max(100, int($RATE * 0.95 * ($MAXS - 15) / 100) * 100))")
echo "rate $RATE it/s per process -> steps $N, max-seconds $MAXS"

for j in $JOBS; do
  IFS=: read -r lab n ap mx ex <<< "$j"
  mkdir -p $OUT/$lab
  CMD="python3 tools/train_codec.py $(args $lab $n $ap $mx $ex) --steps $N --schedule cosine --warmup 100 --lr 1e-4 --max-seconds $MAXS --out $OUT/$lab"
  echo "$CMD" | tee -a $OUT/commands.txt
  $CMD > $OUT/$lab/$n.stdout 2>&1 &
done
while [ -n "$(jobs -r)" ]; do
  sleep 60
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
  for f in $OUT/*/*.log; do echo "$f: $(tail -n1 $f | cut -c1-110)"; done
done
wait
echo "trained ($(( $(date +%s) - t0 ))s)"
for f in $OUT/*/*-p0.safetensors; do
  CMD="python3 tools/training/slice_channels.py $f $f --channels 60 --photos $P --device $DEV"
  echo "$CMD" | tee -a $OUT/commands.txt
  $CMD &
done
wait
FILES=$(ls $OUT/*/*.safetensors)
set -- $FILES
while [ $# -gt 0 ]; do  # two files per evaluation process
  python3 tools/training/quick_eval.py $1 $2 --device $DEV --seeds $SEEDS $EVAL_ARGS > /tmp/eval-$#.txt 2>&1 &
  shift; [ $# -gt 0 ] && shift
done
wait
cat /tmp/eval-*.txt | awk '!seen[$0]++' | tee $OUT/quick_eval.txt
echo "evaluated ($(( $(date +%s) - t0 ))s)"
cd $OUT && tar czf logs.tgz */*.log */*.stdout commands.txt quick_eval.txt
i=0; set -- $(ls */*.safetensors)
while [ $# -gt 0 ]; do  # three weight files (~4.6 MB each) per tar: every file under 16 MiB
  i=$((i + 1)); tar cf weights$i.tar ${@:1:3}; shift 3 2>/dev/null || set --
done
rm -rf */ commands.txt quick_eval.txt
ls -la
