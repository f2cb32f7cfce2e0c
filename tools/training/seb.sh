#!/usr/bin/env bash
# Seed 001's networks and knowledge base, exactly as the shipped files were made (CPU, 2 threads,
# niced; see tools/training/SEB.md). From the repository root.
set -euo pipefail
mkdir -p runs/seb
# stage 1: f_SE / f_TP as an autoencoder, fine/coarse mixed at random, feature noise (0.28 s/step)
nice -n 10 .venv/bin/python tools/training/train_seb.py --steps 8000 \
  --checkpoint runs/seb/stage1.ckpt.safetensors --out runs/seb/stage1.safetensors > runs/seb/stage1.log 2>&1
# the initial KB (eqs. 1-4) from the training photographs' features under the stage-1 encoder
.venv/bin/python tools/training/build_seb_kb.py --weights runs/seb/stage1.safetensors \
  --out runs/seb/seb-kb.safetensors > runs/seb/kb.log 2>&1
# stage 2: the decoder alone, on features quantized by that KB (the encoder is frozen, so the KB stays valid)
nice -n 10 .venv/bin/python tools/training/train_seb.py --init runs/seb/stage1.safetensors \
  --kb runs/seb/seb-kb.safetensors --steps 2500 --lr 1e-4 --lr-end 5e-6 \
  --checkpoint runs/seb/stage2.ckpt.safetensors --out runs/seb/stage2.safetensors > runs/seb/stage2.log 2>&1
cp runs/seb/stage2.safetensors netsem/weights/seb.safetensors
cp runs/seb/seb-kb.safetensors netsem/weights/seb-kb.safetensors
cp runs/seb/seb-kb.json netsem/weights/seb-kb.json
