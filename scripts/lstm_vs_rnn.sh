#!/usr/bin/env bash
# The README's headline comparison: the default command for the custom LSTM and for nn.RNN
# (same data, sizes, optimiser and seed), then their per-length test accuracy side by side.
#   SENTIMENT_LSTM_DATA=/path/to/aclImdb_v1.tar.gz bash scripts/lstm_vs_rnn.sh [overrides...]
set -euo pipefail
sweep="outputs/multirun/lstm_vs_rnn_$(date +%Y-%m-%d_%H-%M-%S)"
python -m sentiment_lstm.train -m model=lstm,rnn hydra.sweep.dir="$sweep" "$@"
python -m sentiment_lstm.compare "$sweep" --out "$sweep/by_length.md"
