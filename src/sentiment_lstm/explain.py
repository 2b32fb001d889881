"""Look inside reviews: what the LSTM writes, erases and reveals, token by token, beside an RNN.

    python -m sentiment_lstm.explain --checkpoint outputs/runs/<lstm run> \\
        --compare outputs/runs/<rnn run> --text "I liked it." --out review.html
    python -m sentiment_lstm.explain --checkpoint best.ckpt --file reviews.txt \\
        --out reviews.html --json reviews.json      # one review a line (or JSONL)

The page is self-contained (no network). Python: sentiment_lstm.evaluation.explain.explain.
"""

import argparse
import json
import sys

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.evaluation.explain import PREFIX_CUT, explain, to_json
from sentiment_lstm.inference import load_classifier
from sentiment_lstm.io import InputError, atomic_write_text, read_texts
from sentiment_lstm.reports.html import page


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sentiment_lstm.explain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a custom LSTM's checkpoint or run")
    ap.add_argument("--compare", help="another checkpoint (an RNN) with the same tokenizer")
    ap.add_argument("--text", action="append", help="a review (repeatable)")
    ap.add_argument("--file", help="reviews, one per line (or JSONL); '-' for stdin")
    ap.add_argument("--out", required=True, help="the HTML page to write")
    ap.add_argument("--json", help="also write the numbers as JSON")
    ap.add_argument("--top-units", type=int, default=8, help="units in each heat strip")
    args = ap.parse_args(argv)
    try:
        texts = args.text or read_texts(args.file)
        clf = load_classifier(args.checkpoint, "cpu")
        other = load_classifier(args.compare, "cpu") if args.compare else None
        rows = explain(clf, texts, compare=other)
        atomic_write_text(page(rows, args.top_units, PREFIX_CUT), args.out)
        if args.json:
            atomic_write_text(json.dumps([to_json(r, args.top_units) for r in rows]), args.json)
    except (CheckpointError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for row in rows:
        print(json.dumps({"label": row["label"], "prob_pos": round(float(row["probs"][-1]), 6),
                          "tokens": row["n_tokens"], "fed": len(row["tokens"])}))
    print(f"wrote {args.out}" + (f" and {args.json}" if args.json else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
