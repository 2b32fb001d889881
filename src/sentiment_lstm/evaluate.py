"""Evaluate a checkpoint on the IMDB test split or on any labeled CSV / JSONL file; score a
model on an encoded split (training's validation and test use `evaluate_split`).

    python -m sentiment_lstm.evaluate --checkpoint outputs/runs/<run>            # IMDB test
    python -m sentiment_lstm.evaluate --checkpoint outputs/runs/<run> --split val  # its validation
    python -m sentiment_lstm.evaluate --checkpoint best.ckpt --file labeled.csv  # text,label
    python -m sentiment_lstm.evaluate --checkpoint best.ckpt --file x.jsonl --out results.json
    python -m sentiment_lstm.evaluate --checkpoint <run>/epoch00{7,8,9}.ckpt   # weights averaged

Labels may be 0/1 or the checkpoint's label names (neg/pos). Writes a table to stdout and
everything (per-length buckets with counts and 95% intervals too) to --out as JSON.
`--predictions DIR/test_predictions.csv` (beside --out) keeps which reviews it got right, as a
training run does, so that `compare` can pair two models review by review (McNemar).
"""

import argparse
import contextlib
import csv
import io
import json
import os
import signal
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from sentiment_lstm import data, distributed
from sentiment_lstm.batching import BucketBatchSampler, batches, fed_lengths
from sentiment_lstm.checkpoint import (
    CheckpointError,
    atomic_write_text,
    load_bundle,
    save_predictions,
)
from sentiment_lstm.config import Truncate
from sentiment_lstm.memory import reuse_freed_memory
from sentiment_lstm.metrics import accuracy_by_length, binary_report
from sentiment_lstm.models import SentimentClassifier
from sentiment_lstm.predict import InputError, load_classifier, read_jsonl, read_text
from sentiment_lstm.tokenizer import EncodedSplit

EVAL_BATCH = 256
csv.field_size_limit(2**31 - 1)  # a review may be longer than csv's 128 KB default


def autocast(device: torch.device, precision: str):
    """bf16 autocast for trainer.precision=bf16; nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate_split(model: SentimentClassifier, split: EncodedSplit, max_len: int,
                   truncate: str, device: torch.device,
                   precision: str = "fp32") -> tuple[float, torch.Tensor]:
    """Mean loss and a (N,) bool tensor of which reviews were classified right, in split order.

    Under torchrun each rank scores its own shard and the sums are all-reduced, so every rank
    returns the same numbers.
    """
    was_training = model.training
    model.eval()
    correct = torch.zeros(len(split), dtype=torch.int32)
    total = torch.zeros(1, dtype=torch.float64)
    sampler = BucketBatchSampler(split.lengths, EVAL_BATCH, shuffle=False,
                                 rank=distributed.rank(), world=distributed.world())
    for batch in batches(split, sampler, max_len, truncate):
        b = batch.to(device)
        with autocast(device, precision):
            logits = model(b.tokens, b.lengths).float()
        total += F.cross_entropy(logits, b.labels, reduction="sum").item()
        correct[batch.index] = (logits.argmax(1) == b.labels).int().cpu()
    model.train(was_training)
    distributed.all_reduce(correct)
    distributed.all_reduce(total)
    return total.item() / len(split), correct.bool()


def test_checkpoint(path: Path, test: EncodedSplit, cfg,
                    device: torch.device) -> tuple[dict, torch.Tensor]:
    """A checkpoint's test loss and accuracy, overall and per review length (cfg: the run's),
    and which reviews it got right."""
    best = distributed.gather(load_bundle(path) if distributed.rank() == 0
                              else None)[0]  # only rank 0's disk is sure to hold it
    model = SentimentClassifier(**best["model_args"])
    model.load_state_dict(best["state_dict"])
    model.to(device)
    loss, correct = evaluate_split(model, test, cfg.data.max_len, cfg.data.truncate, device,
                                   cfg.trainer.precision)
    return {"acc": correct.float().mean().item(), "loss": loss, "n": len(test),
            "best_epoch": best["epoch"],
            "acc_by_len": accuracy_by_length(correct, test.lengths,
                                             list(cfg.eval.bucket_edges))}, correct


def read_labeled(path: Path, labels: list[str], text_col: str = "text",
                 label_col: str = "label") -> tuple[list[str], list[int]]:
    """(texts, 0/1 labels) from a CSV with a header or a JSONL file."""
    if path.suffix == ".jsonl":
        rows = read_jsonl(str(path), (text_col, label_col))
    else:
        # csv splits the rows itself: a quoted text may span lines, blank ones too
        rows = list(csv.DictReader(io.StringIO(read_text(str(path)), newline="")))
        if not rows or not {text_col, label_col} <= set(rows[0]):
            found = ", ".join(rows[0]) if rows else "nothing"
            raise InputError(f"{path}: needs columns {text_col!r} and {label_col!r}, "
                             f"found {found}")
    names = {name: i for i, name in enumerate(labels)} | {str(i): i for i in range(len(labels))}
    texts, ys = [], []
    for i, row in enumerate(rows, 1):
        if row[label_col] is None:
            raise InputError(f"{path}: row {i} has no {label_col!r} value")
        y = str(row[label_col]).strip().lower()
        if y not in names:
            raise InputError(f"{path}: row {i} has unknown label {row[label_col]!r} "
                             f"(expected one of {', '.join(names)})")
        texts.append(str(row[text_col]))
        ys.append(names[y])
    return texts, ys


def evaluate_texts(clf, texts: list[str], labels: list[int],
                   batch_size: int = 128) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """The report, which texts were classified right and their token counts (the last two are
    what a training run keeps in test_predictions.csv)."""
    probs, lengths = clf.probabilities(texts, batch_size)
    y = torch.tensor(labels)
    pred = (probs >= 0.5).long()
    report = binary_report(pred, y)
    report["acc_by_len"] = accuracy_by_length(pred == y, lengths, clf.edges)
    report["truncated"] = int((lengths > fed_lengths(lengths, clf.max_len, clf.truncate)).sum())
    return report, pred == y, lengths


def format_report(report: dict, labels: list[str]) -> str:
    lines = [f"accuracy {100 * report['acc']:.2f}%  (n={report['n']})",
             f"precision {report['precision']:.4f}  recall {report['recall']:.4f}  "
             f"f1 {report['f1']:.4f}  (positive = {labels[1]})",
             "", f"confusion (rows true, columns predicted: {labels[0]}, {labels[1]})"]
    lines += [f"  {labels[i]:>5} {row[0]:>7} {row[1]:>7}" for i, row in
              enumerate(report["confusion"])]
    lines += ["", f"{'length':>10} {'n':>6} {'acc %':>7}  95% interval"]
    for bucket, row in report["acc_by_len"].items():
        if row["n"]:
            lo, hi = row["ci95"]
            lines.append(f"{bucket:>10} {row['n']:>6} {100 * row['acc']:>7.2f}  "
                         f"[{100 * lo:.1f}, {100 * hi:.1f}]")
    return "\n".join(lines)


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
    ap.add_argument("--data-path", help=f"IMDB tarball or folder (default ${data.ENV_PATH})")
    ap.add_argument("--text-column", default="text")
    ap.add_argument("--label-column", default="label")
    ap.add_argument("--out", help="write the report as JSON here")
    ap.add_argument("--predictions", help="write which texts it got right here (CSV)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--truncate", choices=[t.value for t in Truncate],
                    help="override the checkpoint's truncation (none: whole reviews)")
    ap.add_argument("--max-len", type=int, help="override the checkpoint's data.max_len")
    args = ap.parse_args(argv)
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
        if args.file:
            texts, labels = read_labeled(Path(args.file), clf.labels, args.text_column,
                                         args.label_column)
        else:
            path = args.data_path or os.environ.get(data.ENV_PATH)
            if not path:
                raise InputError(f"the IMDB {split} split needs --data-path or "
                                 f"${data.ENV_PATH}")
            d = clf.config["data"]  # validation: as carved from train by the run
            texts, labels = data.load_splits(
                data.local_source(Path(path)), d["val_fraction"], d["split_seed"],
                d.get("limit") if split == "val" else None)[split]
        report, correct, lengths = evaluate_texts(clf, texts, labels, args.batch_size)
    except (CheckpointError, InputError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:  # written before printing, so a closed pipe (`| head`) cannot lose it
        atomic_write_text(json.dumps(
            {"checkpoint": " ".join(args.checkpoint), "encoder": clf.encoder, "seed": clf.seed,
             "data": args.file or f"imdb/{split}", "truncate": clf.truncate,
             "max_len": clf.max_len, **report}, indent=2), args.out)
    if args.predictions:
        save_predictions(correct, lengths, args.predictions)
    print(format_report(report, clf.labels))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head`: stop quietly, as cat does
    sys.exit(main())
