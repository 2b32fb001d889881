#!/usr/bin/env bash
# Two trainings sharing the cores: the same small run (2000 reviews, one epoch) alone, then two
# at once with torch's default threads, with trainer.threads=1 each, and with
# OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning on the other run's
# cores). Prints each run's epoch time (results.json timing.train_s) and its ratio to the lone
# run; a pair ratio under 2 means sharing beats running the two one after the other.
#
#   SENTIMENT_LSTM_DATA=/path/to/aclImdb_v1.tar.gz bash scripts/bench_shared_cores.sh [overrides...]
set -euo pipefail
: "${SENTIMENT_LSTM_DATA:?set SENTIMENT_LSTM_DATA to the IMDB tarball or aclImdb folder}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(data.path="$SENTIMENT_LSTM_DATA" data.limit=2000 trainer.max_epochs=1
        trainer.progress=false)

train() {  # train NAME [overrides...]: one run into $out/NAME, its log beside it
  local name=$1
  shift
  python -m sentiment_lstm.train "${common[@]}" hydra.run.dir="$out/$name" "$@" \
    > "$out/$name.log" 2>&1 || { cat "$out/$name.log" >&2; exit 1; }
}

pair() {  # pair NAME [overrides...]: two identical runs at once (env passes through)
  local name=$1
  shift
  train "${name}_a" "$@" &
  local a=$!
  train "${name}_b" "$@" &
  local b=$!
  wait "$a" && wait "$b"
}

python -c "from sentiment_lstm.model import cpp_scan; cpp_scan.build_error()"  # built once
train lone "$@"  # also fills the tokenizer cache, so the pairs only read it
train lone_threads1 trainer.threads=1 "$@"
pair default "$@"
pair threads1 trainer.threads=1 "$@"
OMP_WAIT_POLICY=PASSIVE pair passive "$@"

python - "$out" <<'PY'
import json, sys
out = sys.argv[1]
epoch = lambda name: json.load(open(f"{out}/{name}/results.json"))["timing"]["train_s"]
lone = epoch("lone")
print(f"{'case':>36} {'epoch s':>8} {'x lone':>7}")
for case, names in [("alone, default threads", ["lone"]),
                    ("alone, trainer.threads=1", ["lone_threads1"]),
                    ("two at once, default threads", ["default_a", "default_b"]),
                    ("two at once, trainer.threads=1", ["threads1_a", "threads1_b"]),
                    ("two at once, OMP_WAIT_POLICY=PASSIVE", ["passive_a", "passive_b"])]:
    for name in names:
        print(f"{case:>36} {epoch(name):>8.2f} {epoch(name) / lone:>7.2f}")
PY
