"""Evaluate a checkpoint on the IMDB test split, its validation split, or any labeled CSV /
JSONL file.

    python -m sentiment_lstm.evaluate --checkpoint outputs/runs/<run>            # IMDB test
    python -m sentiment_lstm.evaluate --checkpoint outputs/runs/<run> --split val  # its validation
    python -m sentiment_lstm.evaluate --checkpoint best.ckpt --file labeled.csv  # text,label
    python -m sentiment_lstm.evaluate --checkpoint best.ckpt --file x.jsonl --out results.json
    python -m sentiment_lstm.evaluate --checkpoint <run>/epoch00{7,8,9}.ckpt   # weights averaged

Labels are the checkpoint's label names (neg/pos for IMDB) or, where those are not integers,
their indices (0/1). Writes a table to stdout and
everything (per-length buckets with counts and 95% intervals too) to --out as JSON.
`--predictions DIR/test_predictions.csv` (beside --out) keeps which reviews it got right, as a
training run does, so that `compare` can pair two models review by review (McNemar).
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.choices import Truncate
from sentiment_lstm.data import corpus, sources
from sentiment_lstm.data.types import DataError
from sentiment_lstm.evaluation.predictions import save_predictions
from sentiment_lstm.evaluation.scoring import evaluate_texts
from sentiment_lstm.inference import load_classifier
from sentiment_lstm.io import InputError, atomic_write_text
from sentiment_lstm.reports.tables import format_report
from sentiment_lstm.runtime.memory import reuse_freed_memory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sentiment_lstm.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, nargs="+",
                    help="checkpoint file or run directory; several: their weights averaged")
    ap.add_argument("--file", help="labeled CSV (header) or JSONL; default: an IMDB split")
    ap.add_argument("--split", choices=["test", "val"],
                    help="IMDB split without --file: test (all 25,000 reviews) or val (the "
                         "validation reviews the run selected on, carved as in training); "
                         "default test")
    ap.add_argument("--data-path", help=f"IMDB tarball or folder (default ${sources.ENV_PATH})")
    ap.add_argument("--text-column", nargs="+",
                    help="text column(s), several joined with a newline (default: the run's "
                         "data.text_column, else text)")
    ap.add_argument("--label-column", help="default: the run's data.label_column, else label")
    ap.add_argument("--out", help="write the report as JSON here")
    ap.add_argument("--predictions", help="write which texts it got right here (CSV)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--truncate", choices=[t.value for t in Truncate],
                    help="override the checkpoint's truncation (none: whole reviews)")
    ap.add_argument("--max-len", type=int, help="override the checkpoint's data.max_len")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head`: stop quietly, as cat does
    reuse_freed_memory()  # as in training: each batch's buffers are not faulted in afresh
    if args.file and args.split:
        print("error: --split picks an IMDB split; it cannot go with --file", file=sys.stderr)
        return 2
    split = args.split or "test"
    for flag, path in (("--out", args.out), ("--predictions", args.predictions)):
        if path and not Path(path).parent.is_dir():  # fail before minutes of evaluation
            print(f"error: {flag} {path}: no directory {Path(path).parent}", file=sys.stderr)
            return 2
    try:
        clf = load_classifier(args.checkpoint, args.device)
        clf.truncate = args.truncate or clf.truncate
        clf.max_len = args.max_len or clf.max_len
        d = clf.config.get("data", {})
        texts, labels, name = corpus.evaluation_texts(
            d, clf.labels, args.file, split, args.data_path or os.environ.get(sources.ENV_PATH),
            args.text_column, args.label_column)
        report, correct, lengths = evaluate_texts(clf, texts, labels, args.batch_size)
    except (CheckpointError, InputError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:  # written before printing, so a closed pipe (`| head`) cannot lose it
        atomic_write_text(json.dumps(
            {"checkpoint": " ".join(args.checkpoint), "encoder": clf.encoder, "seed": clf.seed,
             "variant": clf.variant,
             "data": name, "truncate": clf.truncate,
             "max_len": clf.max_len, **report}, indent=2), args.out)
    if args.predictions:
        save_predictions(correct, lengths, args.predictions)
    print(format_report(report, clf.labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
