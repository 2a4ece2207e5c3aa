#!/usr/bin/env bash
# On the lent GPU: retrain lab-visa against the shipped generators (STAGE=train), then measure issue 4's
# acceptance figures with the weights in the tree (STAGE=acceptance; benchmarks/lab_acceptance.py). STAGE=all
# does both. New weights land in /tmp/w (kept while the machine stays warm) and in $OUT.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
W=src/ttscale/lab/weights
STAGE=${STAGE:-all}
if [[ $STAGE == train || $STAGE == all ]]; then
  mkdir -p /tmp/w && cp "$W/verifiers.json" /tmp/w/
  python3 -m ttscale --quiet lab train-verifiers --out /tmp/w --only lab-visa --workers 14 \
    --max-minutes "${VISA_MINUTES:-4.5}" 2>&1 | tee "$OUT/verifiers.log"
  cp /tmp/w/lab-visa.safetensors /tmp/w/verifiers.json "$W/"
  cp /tmp/w/lab-visa.safetensors /tmp/w/verifiers.json "$OUT/"
fi
if [[ $STAGE == acceptance || $STAGE == all ]]; then
  if [[ -f /tmp/w/lab-visa.safetensors ]]; then cp /tmp/w/lab-visa.safetensors /tmp/w/verifiers.json "$W/"; fi
  python3 benchmarks/lab_acceptance.py --out /tmp/acc --workers 14 ${ACC_ARGS:-} 2>&1 | tee "$OUT/acceptance.log"
  tar cf "$OUT/acc.tar" -C /tmp acc
fi
