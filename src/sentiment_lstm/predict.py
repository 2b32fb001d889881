"""Classify reviews with a trained checkpoint.

    python -m sentiment_lstm.predict --checkpoint outputs/runs/<run> --text "A fine film."
    python -m sentiment_lstm.predict --checkpoint best.ckpt --file reviews.txt   # one per line
    python -m sentiment_lstm.predict --checkpoint best.ckpt --file reviews.jsonl # {"text": ...}
    cat reviews.txt | python -m sentiment_lstm.predict --checkpoint best.ckpt

Python: load_classifier(path).predict(["A fine film.", "Dull."]) -> list of dicts.
"""

import argparse
import json
import re
import signal
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import Tensor

from sentiment_lstm.batching import BucketBatchSampler, batches, fed_lengths
from sentiment_lstm.checkpoint import CheckpointError, average_bundles, load_bundle
from sentiment_lstm.config import EvalConfig
from sentiment_lstm.metrics import bucket_names, bucketize
from sentiment_lstm.models import SentimentClassifier
from sentiment_lstm.tokenizer import encode


class InputError(ValueError):
    pass


class Classifier:
    """A checkpoint made ready to use: tokenizer, model, truncation and length buckets."""

    def __init__(self, bundle: dict, device: str = "auto"):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.labels: list[str] = bundle["labels"]
        self.config: dict = bundle["config"]  # the training run's, resolved
        self.encoder, self.seed = bundle["model_args"]["encoder"], self.config.get("seed")
        self.max_len, self.truncate = bundle["data"]["max_len"], bundle["data"]["truncate"]
        self.edges = self.config.get("eval", {}).get("bucket_edges", EvalConfig().bucket_edges)
        self.tokenizer = Tokenizer.from_str(bundle["tokenizer"])
        self.model = SentimentClassifier(**bundle["model_args"])
        try:
            self.model.load_state_dict(bundle["state_dict"])
        except (RuntimeError, KeyError) as e:  # torch lists every mismatch; the first will do
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            raise CheckpointError(f"checkpoint weights do not fit its model: {lines[-1]}") from e
        self.model.to(self.device).eval()

    @torch.no_grad()
    def probabilities(self, texts: list[str], batch_size: int = 128) -> tuple[Tensor, Tensor]:
        """P(positive) (N,) and token counts before truncation (N,), in input order."""
        split = encode(self.tokenizer, texts)
        probs = torch.empty(len(texts))
        sampler = BucketBatchSampler(split.lengths, batch_size, shuffle=False)
        for batch in batches(split, sampler, self.max_len, self.truncate):
            b = batch.to(self.device)
            probs[batch.index] = self.model(b.tokens, b.lengths).softmax(-1)[:, 1].float().cpu()
        return probs, split.lengths

    def predict(self, texts: list[str], batch_size: int = 128) -> list[dict]:
        """One dict per text. Empty or whitespace-only text has no label and is flagged."""
        probs, lengths = self.probabilities(texts, batch_size)
        names = bucket_names(self.edges)
        buckets = bucketize(lengths, self.edges).tolist()
        cut = (lengths > fed_lengths(lengths, self.max_len, self.truncate)).tolist()
        out = []
        for text, p, n, k, c in zip(texts, probs.tolist(), lengths.tolist(), buckets, cut):
            empty = not text.strip()
            out.append({"label": None if empty else self.labels[int(p >= 0.5)],
                        "prob_pos": None if empty else round(p, 6), "tokens": n,
                        "bucket": names[k], "truncated": c, "empty": empty})
        return out


def load_classifier(path: str | Path | list, device: str = "auto") -> Classifier:
    """From a checkpoint file or a run directory (its best.ckpt); from a list of several,
    their weights averaged (checkpoint.average_bundles)."""
    paths = [path] if isinstance(path, (str, Path)) else path
    return Classifier(average_bundles(paths) if len(paths) > 1 else load_bundle(paths[0]), device)


def read_text(path: str | None) -> str:
    """A UTF-8 file, or stdin for None or "-", decoded whole."""
    raw = sys.stdin.buffer.read() if path in (None, "-") else _read_bytes(Path(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InputError(f"{path or 'stdin'}: line {line} is not valid UTF-8") from e


def read_lines(path: str | None) -> list[str]:
    """The non-blank lines of a UTF-8 file, or of stdin for None or "-". Only \\n, \\r\\n and
    \\r end a line, not every break str.splitlines() knows: reviews hold U+0085 (IMDB's
    ellipsis) and U+2028 inside a line."""
    lines = [ln for ln in re.split(r"\r\n?|\n", read_text(path)) if ln.strip()]
    if not lines:
        raise InputError(f"{path or 'stdin'}: no reviews (the input is empty)")
    return lines


def read_jsonl(path: str, fields: tuple[str, ...] = ("text",)) -> list[dict]:
    rows = []
    for i, line in enumerate(read_lines(path), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not all(f in row for f in fields):
            raise InputError(f"{path}: line {i} is not a JSON object with "
                             + " and ".join(f'a "{f}"' for f in fields) + " field")
        rows.append(row)
    return rows


def read_texts(path: str | None, jsonl: bool = False) -> list[str]:
    """Reviews from a file (one per line, or JSONL with a "text" field) or stdin ("-")."""
    if jsonl or (path or "").endswith(".jsonl"):
        return [str(row["text"]) for row in read_jsonl(path or "-")]
    return read_lines(path)


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise InputError(f"input file {path} does not exist")
    return path.read_bytes()


def main(argv: list[str] | None = None) -> int:
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
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head`: stop quietly, as cat does
    sys.exit(main())
