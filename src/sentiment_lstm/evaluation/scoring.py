"""Scoring a model: on an encoded split (training's validation and test), a checkpoint on
the test split, a classifier on labeled texts."""

import torch
import torch.nn.functional as F

from sentiment_lstm.checkpoint import load_bundle
from sentiment_lstm.data.batching import BucketBatchSampler, batches, fed_lengths
from sentiment_lstm.data.tokenizer import EncodedSplit
from sentiment_lstm.evaluation.metrics import (
    accuracy_by_length,
    classification_report,
    predicted,
)
from sentiment_lstm.model.classifier import SentimentClassifier
from sentiment_lstm.runtime import distributed
from sentiment_lstm.runtime.device import autocast

EVAL_BATCH = 256


def _scores(model: SentimentClassifier, split: EncodedSplit, max_len: int, truncate: str,
            device: torch.device, precision: str, rank: int, world: int):
    """(summed loss, P(class) (N, C)) over the reviews of one rank's shard; zero elsewhere."""
    was_training = model.training
    model.eval()
    probs = torch.zeros(len(split), model.head.out_features)
    total = torch.zeros(1, dtype=torch.float64)
    sampler = BucketBatchSampler(split.lengths, EVAL_BATCH, shuffle=False, rank=rank,
                                 world=world)
    for batch in batches(split, sampler, max_len, truncate):
        b = batch.to(device)
        with autocast(device, precision):
            logits = model(b.tokens, b.lengths).float()
        total += F.cross_entropy(logits, b.labels, reduction="sum").item()
        probs[batch.index] = logits.softmax(-1).cpu()
    model.train(was_training)
    return total, probs


@torch.no_grad()
def evaluate_split(model: SentimentClassifier, split: EncodedSplit, max_len: int,
                   truncate: str, device: torch.device,
                   precision: str = "fp32") -> tuple[float, torch.Tensor]:
    """Mean loss and P(class) (N, C) of each review, in split order.

    Under torchrun each rank scores its own shard and the sums are all-reduced, so every rank
    returns the same numbers.
    """
    total, probs = _scores(model, split, max_len, truncate, device, precision,
                           distributed.rank(), distributed.world())
    distributed.all_reduce(probs)  # each review is scored on one rank, zero on the others
    distributed.all_reduce(total)
    return total.item() / len(split), probs


@torch.no_grad()
def split_probabilities(model: SentimentClassifier, split: EncodedSplit, max_len: int,
                        truncate: str, device: torch.device) -> torch.Tensor:
    """P(class) (N, C) of each review, in split order, scored by this process alone (fp32)."""
    return _scores(model, split, max_len, truncate, device, "fp32", 0, 1)[1]


def test_checkpoint(path, test: EncodedSplit, cfg,
                    device: torch.device) -> tuple[dict, torch.Tensor]:
    """A checkpoint's test loss, accuracy, macro-F1, per class scores and confusion matrix,
    accuracy per review length (cfg: the run's), and its P(class) (N, C) of each review."""
    best = distributed.gather(load_bundle(path) if distributed.rank() == 0
                              else None)[0]  # only rank 0's disk is sure to hold it
    model = SentimentClassifier(**best["model_args"])
    model.load_state_dict(best["state_dict"])
    model.to(device)
    loss, probs = evaluate_split(model, test, cfg.data.max_len, cfg.data.truncate, device,
                                 cfg.trainer.precision)
    pred = predicted(probs)
    report = classification_report(pred, test.labels, best["labels"])
    return {"acc": report.pop("acc"), "loss": loss, "n": report.pop("n"),
            "best_epoch": best["epoch"], **report,
            "acc_by_len": accuracy_by_length(pred == test.labels, test.lengths,
                                             list(cfg.eval.bucket_edges))}, probs


def evaluate_texts(clf, texts: list[str], labels: list[int],
                   batch_size: int = 128) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """The report, which texts were classified right and their token counts (the last two are
    what a training run keeps in test_predictions.csv)."""
    probs, lengths = clf.probabilities(texts, batch_size)
    y = torch.tensor(labels, dtype=torch.int64)
    pred = predicted(probs)
    report = classification_report(pred, y, clf.labels)
    report["acc_by_len"] = accuracy_by_length(pred == y, lengths, clf.edges)
    report["truncated"] = int((lengths > fed_lengths(lengths, clf.max_len, clf.truncate)).sum())
    return report, pred == y, lengths
