#!/usr/bin/env bash
# The gate ablations as docs/gate_ablation.md reports them: experiment=gate_ablation (IMDB,
# every model.variant and nn.RNN, seeds 0, 1, 2, max pooling), the key variants again with
# last-state pooling (seed 0), and experiment=gate_ablation_synthetic (the cue word up to 400
# steps back); then compare's per-length tables, McNemar against vanilla and the plots, in
# $out. Two streams run side by side, one thread each (the recipes set trainer.threads=1).
#   SENTIMENT_LSTM_DATA=/path/to/aclImdb_v1.tar.gz bash scripts/gate_ablation.sh [out]
set -euo pipefail
out="${1:-outputs/gate_ablation}"
train() { python -m sentiment_lstm.train trainer.progress=false "$@" > /dev/null; }
(train experiment=gate_ablation seed=0,2 -m hydra.sweep.dir="$out/imdb_s02" &&
 train -m experiment=gate_ablation model.pooling=last seed=0 hydra.sweep.dir="$out/imdb_last" \
     +ablation=vanilla,no_forget_gate,no_input_gate,no_output_gate,coupled,rnn) &
(train experiment=gate_ablation seed=1 -m hydra.sweep.dir="$out/imdb_s1" &&
 train experiment=gate_ablation_synthetic hydra.sweep.dir="$out/synthetic") &
wait
python -m sentiment_lstm.compare "$out/imdb_s02" "$out/imdb_s1" --out "$out/imdb.md" \
    --plot "$out/imdb.png"
python -m sentiment_lstm.compare "$out/imdb_last" --out "$out/imdb_last.md" --plot "$out/imdb_last.png"
python -m sentiment_lstm.compare "$out/synthetic" --out "$out/synthetic.md" \
    --plot "$out/synthetic.png"
