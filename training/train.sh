#!/usr/bin/env bash
# The whole recipe for the shipped model, resumable: re-run it and each stage continues from its checkpoint.
# Usage: training/train.sh [minutes-for-this-chunk]   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${1:-75}
DATA=${DATA:-data/train}
CKPT=${CKPT:-training/ckpt}
PY=/usr/bin/python3   # Debian's python3-torch lives here, not in the python3 first on PATH
export OMP_WAIT_POLICY=PASSIVE PYTHONPATH=training
mkdir -p "$CKPT"
# 1. data (deterministic; training seeds only)
if [ ! -f "$DATA/index.json" ]; then
  npx tsx scripts/dataset.ts --split train --scenes "${SCENES:-1200}" --out "$DATA"
fi
# 2. autoencoder, then the latent table
if ! $PY -c "import torch,sys; s=torch.load('$CKPT/ae.pt'); sys.exit(0 if 'scale' in s else 1)" 2>/dev/null; then
  $PY -m v4s_train.train ae --data "$DATA" --out "$CKPT" --steps "${AE_STEPS:-2000}" --minutes "$MIN"
fi
[ -f "$DATA/latents.f16.npy" ] || $PY -m v4s_train.train latents --data "$DATA" --out "$CKPT"
# 3. the denoiser, in chunks of at most $MIN minutes
$PY -m v4s_train.train dit --data "$DATA" --out "$CKPT" --steps "${DIT_STEPS:-5000}" --minutes "$MIN"
# 4. the grounder (denoiser frozen), validated on dev scenes
DEV=${DEV:-data/dev}
[ -f "$DEV/index.json" ] || npx tsx scripts/dataset.ts --split dev --scenes 200 --out "$DEV"
$PY -m v4s_train.train ground --data "$DATA" --dev "$DEV" --out "$CKPT" --steps "${GROUND_STEPS:-4000}" --minutes "$MIN"
