"""Training throughput of one process against torchrun with N processes, side by side.

    SENTIMENT_LSTM_DATA=/path/to/aclImdb_v1.tar.gz python scripts/ddp_speedup.py \
        --nproc 2 --repeats 2 data.limit=4000

Each round trains one epoch (no test) once in one process and once under
`torchrun --standalone --nproc_per_node=N`, alternating so that machine noise hits both;
prints training tokens/s of each and their ratio. The single process keeps torch's default
thread count; torchrun gives each of its processes OMP_NUM_THREADS=1 unless it is set.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TRAIN = ["-m", "sentiment_lstm.train", "trainer.max_epochs=1", "trainer.test=false",
         "trainer.progress=false"]


def tokens_per_s(launcher: list[str], overrides: list[str], run_dir: Path) -> float:
    subprocess.run([*launcher, *TRAIN, *overrides, f"hydra.run.dir={run_dir}"], check=True,
                   capture_output=True)
    return json.loads((run_dir / "results.json").read_text())["timing"]["train_tokens_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for both")
    args = ap.parse_args()
    single = [sys.executable]
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={args.nproc}"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            one = tokens_per_s(single, args.overrides, Path(tmp) / f"one{r}")
            many = tokens_per_s(ddp, args.overrides, Path(tmp) / f"ddp{r}")
            rows.append((one, many))
            print(f"round {r}: 1 process {one:.0f} tokens/s, {args.nproc} processes "
                  f"{many:.0f} tokens/s, speed-up {many / one:.2f}x", flush=True)
    ratios = sorted(m / o for o, m in rows)
    print(f"speed-up of {args.nproc} processes over 1: median {ratios[len(ratios) // 2]:.2f}x "
          f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()
