"""Forward+backward time of the custom LSTM against nn.LSTM (padded input) and nn.RNN;
custom_lstm is model.kernel=auto (the C++ scan on CPU, Triton on CUDA), custom_lstm_scan the
Python scan (FusedLSTMScan), custom_lstm_autograd the plain autograd loop.

    python -m sentiment_lstm.bench                          # B=64 E=128 H=256, T=128,256,512
    python -m sentiment_lstm.bench --layers 2 --bidirectional --json bench.json
    python -m sentiment_lstm.bench --bf16                   # also bf16 autocast
    python -m sentiment_lstm.bench --data-path aclImdb_v1.tar.gz --lengths   # data prep only
    python -m sentiment_lstm.bench --data-path aclImdb_v1.tar.gz --predict outputs/runs/<run>
    python -m sentiment_lstm.bench --data-path aclImdb_v1.tar.gz --lengths --loop --reuse-memory

Candidates run interleaved in one process after a warm-up, so machine noise hits them alike;
the ratio to nn.LSTM is the number to compare across machines. GFLOP/s counts the GEMMs'
forward+backward FLOPs (speed.recurrent_flops). The header names the CPU model, its ISA flags
(AMX/AVX-512 decide the GEMM kernels) and torch's threads (--threads N sets them). CUDA is
timed with events.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from sentiment_lstm.data import sources
from sentiment_lstm.evaluation.speed import bench, bench_data, bench_loop, machine_info
from sentiment_lstm.inference import load_classifier, predict_throughput
from sentiment_lstm.runtime.memory import reuse_freed_memory


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m sentiment_lstm.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--embed", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lengths", type=int, nargs="*", default=[128, 256, 512])
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--bidirectional", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    ap.add_argument("--bf16", action="store_true", help="also time bf16 autocast")
    ap.add_argument("--data-path", help="also time data preparation of this IMDB tarball")
    ap.add_argument("--loop", action="store_true",
                    help="with --data-path: training-loop against pure model tokens/s")
    ap.add_argument("--reuse-memory", action="store_true",
                    help="keep freed memory for reuse, as training does (memory.py)")
    ap.add_argument("--predict", metavar="CHECKPOINT",
                    help="with --data-path: predict throughput of this checkpoint")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (torch.set_num_threads)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            print(f"error: --threads {args.threads}: must be >= 1", file=sys.stderr)
            sys.exit(2)
        torch.set_num_threads(args.threads)
    if args.reuse_memory:  # process-wide and for good: compare it across processes
        reuse_freed_memory()
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    machine = machine_info() | {"reuse_memory": args.reuse_memory}
    print(f"# cpu: {machine['cpu']}; isa: {' '.join(machine['isa']) or '-'}; "
          f"threads: {machine['threads']}; torch {machine['torch']}; cuda: {machine['cuda']}")
    print(f"{'device':>6} {'T':>5} {'candidate':>25} {'seconds':>9} {'tokens/s':>10} "
          f"{'GFLOP/s':>8} {'x nn.LSTM':>9}")
    rows = []
    for device in devices:
        for T in args.lengths:
            for row in bench(device, args.batch, args.embed, args.hidden, T, args.layers,
                             args.bidirectional, args.repeats, args.warmup, args.bf16):
                rows.append(row)
                print(f"{row['device']:>6} {T:>5} {row['candidate']:>25} {row['seconds']:>9.4f} "
                      f"{row['tokens_per_s']:>10.0f} {row['gflop_per_s']:>8.1f} "
                      f"{row['ratio_to_nn_lstm']:>9.2f}")
    report = {"machine": machine, "rows": rows}
    if args.data_path:
        report["data"], prepared = bench_data(args.data_path)
        if args.loop:
            report["data"] |= bench_loop(*prepared)
        if args.predict:
            texts = sources.read(sources.local_source(Path(args.data_path)))["test"][0]
            report["data"] |= predict_throughput(load_classifier(args.predict, "cpu"), texts)
        print(" ".join(f"{k} {v:.3f}" for k, v in report["data"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
