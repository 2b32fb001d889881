#!/usr/bin/env bash
# One pass on a CUDA machine (about 5 of the 8 minutes it may have; torch 2.11+, triton 3.6):
# the tests that need CUDA (the whole of test_triton_scan runs on the GPU there), the
# TritonLSTMScan / cuDNN / FusedLSTMScan benchmark, and, where $SENTIMENT_LSTM_DATA names the
# IMDB tarball, the default command end to end and one epoch of best_lstm at 512 units.
# Everything lands in $OUT, else ./gpu_results: logs, JUnit XML, bench_triton_scan.json, the
# runs' results.json, a summary.
#   SENTIMENT_LSTM_DATA=/path/to/aclImdb_v1.tar.gz bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_results}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET  # the compiled kernels are under test here
python -c "import torch, triton; assert torch.cuda.is_available(), 'no CUDA device'
print(torch.cuda.get_device_name(), 'torch', torch.__version__, 'triton', triton.__version__)" \
    | tee "$out/summary.txt" || exit 1

run() {  # name, seconds, command...: a log, a status line, never a stop
    local name=$1 limit=$2
    shift 2
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc ($(tail -n 1 "$out/$name.log"))" | tee -a "$out/summary.txt"
}
pytest_args=(-q -p no:cacheprovider -rs -o addopts=)  # one process, with or without xdist
run test_triton_scan 150 python -m pytest "${pytest_args[@]}" tests/test_triton_scan.py \
    --junitxml="$out/test_triton_scan.xml"
run test_cuda 150 python -m pytest "${pytest_args[@]}" -k cuda \
    tests/test_cells.py tests/test_predict_evaluate.py --junitxml="$out/test_cuda.xml"
run bench 180 python scripts/bench_triton_scan.py "$out"
if [ -n "${SENTIMENT_LSTM_DATA:-}" ]; then
    run default_command 150 python -m sentiment_lstm.train trainer.progress=false \
        hydra.run.dir="$out/default_command"
    run best_lstm_h512_epoch 120 python -m sentiment_lstm.train experiment=best_lstm \
        model.hidden_size=512 trainer.max_epochs=1 trainer.test=false trainer.progress=false \
        hydra.sweeper.params.seed=0 hydra.sweep.dir="$out/best_lstm_h512"
fi
