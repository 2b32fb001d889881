"""Classify reviews with a trained checkpoint.

    python -m sentiment_lstm.predict --checkpoint outputs/runs/<run> --text "A fine film."
    python -m sentiment_lstm.predict --checkpoint best.ckpt --file reviews.txt   # one per line
    python -m sentiment_lstm.predict --checkpoint best.ckpt --file reviews.jsonl # {"text": ...}
    cat reviews.txt | python -m sentiment_lstm.predict --checkpoint best.ckpt

Python: sentiment_lstm.inference.load_classifier(path).predict(["A fine film.", "Dull."]).
"""

import argparse
import json
import signal
import sys

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.inference import load_classifier
from sentiment_lstm.io import InputError, read_texts


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head`: stop quietly, as cat does
    ap = argparse.ArgumentParser(prog="python -m sentiment_lstm.predict", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, nargs="+",
                    help="checkpoint file or run directory; several: their weights averaged")
    ap.add_argument("--text", action="append", help="a review (repeatable)")
    ap.add_argument("--file", help="reviews, one per line (or JSONL); '-' for stdin")
    ap.add_argument("--jsonl", action="store_true", help="the input is JSONL with a text field")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    try:
        texts = args.text or read_texts(args.file, args.jsonl)
        clf = load_classifier(args.checkpoint, args.device)
        for row in clf.predict(texts, args.batch_size):
            print(json.dumps(row))
    except (CheckpointError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
