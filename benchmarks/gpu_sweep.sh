#!/usr/bin/env bash
# On the lent GPU: issue 5's sweep — every strategy x 4 NFE budgets x 3 seeds with lab-small + lab-visa,
# best-of-n up to 64 (2560 NFEs) from one pool. Prompts are sharded over SHARDS processes sharing the GPU
# (the lab nets are launch-bound: launching overlaps across processes, and the U-Net replays as CUDA graphs).
# Results: $OUT/sweep.jsonl, sweep_summary.json, sweep.log. A second call resumes what a timed-out one left.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
SHARDS=${SHARDS:-14}
SEEDS=${SEEDS:-0,1,2}  # e.g. SEEDS=2 for one more seed; merge with `python benchmarks/merge_sweeps.py`
ARGS=(--out /tmp/sweep --budgets 160,320,640,1280 --reference 2560 --per-task ${PER_TASK:-16} --device cuda)
start=$(date +%s)
for i in $(seq 0 $((SHARDS - 1))); do
  timeout "${LIMIT:-420}" python3 -m ttscale sweep "${ARGS[@]}" --seeds "$SEEDS" --shard "$i/$SHARDS" > "/tmp/shard$i.log" 2>&1 &
done
wait
echo "generation: $(( $(date +%s) - start ))s"
for seeds in "$SEEDS" "${SEEDS%,*}" "${SEEDS%%,*}"; do
  if python3 -m ttscale sweep "${ARGS[@]}" --seeds "$seeds" --collect-only 2>&1 | tee "$OUT/sweep.log"; then break; fi
  echo "collect with seeds $seeds failed; trying fewer"
done
cp /tmp/sweep/sweep.jsonl /tmp/sweep/sweep_summary.json "$OUT/" 2>/dev/null
tail -3 /tmp/shard0.log
echo "total: $(( $(date +%s) - start ))s"
