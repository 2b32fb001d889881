#!/usr/bin/env bash
# The headline comparison: experiment=lstm_vs_rnn (the custom LSTM and nn.RNN, seeds 0, 1, 2,
# 64 units per direction as in docs/lstm_vs_rnn, default settings otherwise), then the
# per-length table with McNemar tests, the plot and the TensorBoard custom_scalars layout, all
# in the sweep's folder.
#   SENTIMENT_LSTM_DATA=/path/to/aclImdb_v1.tar.gz bash scripts/lstm_vs_rnn.sh [overrides...]
set -euo pipefail
sweep="outputs/multirun/lstm_vs_rnn_$(date +%Y-%m-%d_%H-%M-%S)"
python -m sentiment_lstm.train experiment=lstm_vs_rnn hydra.sweep.dir="$sweep" "$@"
python -m sentiment_lstm.compare "$sweep" --out "$sweep/by_length.md" --plot "$sweep/by_length.png"
