#!/usr/bin/env bash
# Training-loop tokens/s and page faults per step without and with trainer.reuse_memory's
# malloc settings (memory.py), on the same 30 real IMDB batches. The settings are process-wide
# and cannot be undone, so the two alternate in separate processes, twice each.
#
#   bash scripts/bench_reuse_memory.sh ../shared/data/aclImdb_v1_labeled.tar.gz
set -euo pipefail
data=${1:?usage: bash scripts/bench_reuse_memory.sh <IMDB tarball or aclImdb folder>}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in 1 2; do
  python -m sentiment_lstm.bench --lengths --data-path "$data" --loop --json "$out/default$round.json" > /dev/null
  python -m sentiment_lstm.bench --lengths --data-path "$data" --loop --reuse-memory --json "$out/reuse$round.json" > /dev/null
done
python - "$out" <<'PY'
import json, sys
rows = {}
for mode in ("default", "reuse"):
    for r in (1, 2):
        d = json.load(open(f"{sys.argv[1]}/{mode}{r}.json"))["data"]
        rows.setdefault(mode, []).append(d)
        print(f"{mode:>8} run {r}: loop {d['loop_tokens_per_s']:,.0f} tokens/s, "
              f"{d['loop_page_faults_per_step']:,.0f} page faults/step")
for r in (0, 1):
    print(f"round {r + 1}: reuse / default tokens/s = "
          f"{rows['reuse'][r]['loop_tokens_per_s'] / rows['default'][r]['loop_tokens_per_s']:.2f}")
PY
