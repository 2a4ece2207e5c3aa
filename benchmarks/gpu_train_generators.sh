#!/usr/bin/env bash
# Trains both lab generators at once on one GPU (device tool), then packs the checkpoints into $OUT.
# Reproduce a shipped checkpoint with: ttscale lab train-generator --size SIZE --steps STEP --out DIR
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
MIN=${MINUTES:-7.3}
mkdir -p /tmp/ck
python3 -m ttscale lab train-generator --size small --steps 100000 --workers 7 --max-minutes "$MIN" --out /tmp/ck > "$OUT/small.log" 2>&1 &
python3 -m ttscale lab train-generator --size large --steps 100000 --workers 7 --max-minutes "$MIN" --out /tmp/ck > "$OUT/large.log" 2>&1 &
wait
python3 benchmarks/pack_checkpoints.py /tmp/ck "$OUT"
