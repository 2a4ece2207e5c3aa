#!/usr/bin/env bash
# On the lent GPU: train lab-visa and lab-clip against the shipped generators, then measure issue 4's
# acceptance figures (benchmarks/lab_acceptance.py). Results come back under $OUT.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
W=src/ttscale/lab/weights
python3 -m ttscale lab train-verifiers --out "$W" --workers 14 2>&1 | tee "$OUT/verifiers.log"
cp "$W/lab-visa.safetensors" "$W/lab-clip.safetensors" "$W/verifiers.json" "$OUT/"
python3 benchmarks/lab_acceptance.py --out /tmp/acc --workers 14 2>&1 | tee "$OUT/acceptance.log"
tar cf "$OUT/acc.tar" -C /tmp acc
