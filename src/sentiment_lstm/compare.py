"""Test accuracy per review length, side by side, for finished runs.

    python -m sentiment_lstm.compare outputs/multirun/<time>        # every run below it
    python -m sentiment_lstm.compare outputs/runs/<a> outputs/runs/<b> --out table.md
    python -m sentiment_lstm.compare outputs/multirun/<time> --plot by_length.png
    python -m sentiment_lstm.compare docs/lstm_vs_rnn/              # copies of run folders

Runs are grouped by encoder, and by variant for a gate ablation (`lstm:coupled`); with
several seeds a cell is mean +- std over seeds, with one it is the accuracy and its 95% Wilson
interval. Runs that kept their `test_predictions.csv` are also paired per bucket (McNemar's
exact test, per seed, seeds matched by number; with ablations, each against vanilla). A
TensorBoard custom_scalars layout overlaying the runs per length bucket is written into the
first directory given (or --tensorboard DIR).
"""

import argparse
import sys
from pathlib import Path

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.reports.figures import plot_by_length
from sentiment_lstm.reports.tables import find_results, paired, table
from sentiment_lstm.reports.tracking import write_length_layout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sentiment_lstm.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="run or multirun directories, or results files")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--plot", help="write accuracy against length as a PNG here")
    ap.add_argument("--tensorboard", help="write the custom_scalars layout here (default: the "
                                          "first directory given)")
    args = ap.parse_args(argv)
    try:
        results = find_results(args.paths)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not results:
        print("error: no results file with test metrics under " + " ".join(args.paths),
              file=sys.stderr)
        return 2
    text = "\n\n".join(filter(None, [table(results), paired(results)]))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.plot:
        plot_by_length(results, Path(args.plot))
    layout_dir = args.tensorboard or next((p for p in args.paths if Path(p).is_dir()), None)
    if layout_dir:
        write_length_layout(layout_dir, list(results[0]["test"]["acc_by_len"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
