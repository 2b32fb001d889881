"""Pure metric functions: accuracy, per-length buckets, Wilson intervals, McNemar's test."""

import math

import torch
from torch import Tensor


def bucket_names(edges: list[int]) -> list[str]:
    """[0, 128, 256] -> ["0000-0127", "0128-0255", "0256-inf"]: zero-padded so they sort."""
    width = max(4, len(str(edges[-1])))
    names = [f"{lo:0{width}d}-{hi - 1:0{width}d}" for lo, hi in zip(edges, edges[1:])]
    return names + [f"{edges[-1]:0{width}d}-inf"]


def bucketize(lengths: Tensor, edges: list[int]) -> Tensor:
    """Bucket index of each length: bucket k holds edges[k] <= length < edges[k + 1].
    Lengths below edges[0] fall in bucket 0."""
    return torch.bucketize(lengths, torch.tensor(edges[1:], dtype=lengths.dtype), right=True)


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion correct / n."""
    if n == 0:
        return (math.nan, math.nan)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def mcnemar(a_correct: Tensor, b_correct: Tensor) -> dict:
    """McNemar's exact test of two classifiers scored on the same items: b = items only A got
    right, c = items only B got right; p = two-sided binomial p-value of b against c."""
    b = int((a_correct & ~b_correct).sum())
    c = int((~a_correct & b_correct).sum())
    n, k = b + c, min(b, c)
    log_half_n = n * math.log(0.5)
    tail = sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                        + log_half_n) for i in range(k + 1))
    return {"b": b, "c": c, "p": min(1.0, 2 * tail) if n else 1.0}


def accuracy_by_length(correct: Tensor, lengths: Tensor, edges: list[int]) -> dict[str, dict]:
    """Per bucket of review length: {"n", "correct", "acc", "ci95"}. Empty buckets have acc nan."""
    buckets = bucketize(lengths, edges)
    table = {}
    for k, name in enumerate(bucket_names(edges)):
        hits = correct[buckets == k]
        n, right = len(hits), int(hits.sum())
        table[name] = {"n": n, "correct": right, "acc": right / n if n else math.nan,
                       "ci95": list(wilson_interval(right, n))}
    return table


def classification_report(pred: Tensor, labels: Tensor, names: list[str]) -> dict:
    """Accuracy, macro-F1 (the unweighted mean of the classes' F1), per class precision /
    recall / F1 / n, and the N x N confusion matrix, rows = true label, columns = predicted.
    Two classes add the precision / recall / F1 of the second class (the positive one)."""
    k = len(names)
    confusion = torch.bincount(labels * k + pred, minlength=k * k).reshape(k, k)  # (K, K)
    tp = confusion.diag()
    predicted, actual = confusion.sum(0), confusion.sum(1)
    per_class = {}
    for i, name in enumerate(names):
        p = tp[i].item() / predicted[i].item() if predicted[i] else 0.0
        r = tp[i].item() / actual[i].item() if actual[i] else 0.0
        per_class[name] = {"precision": p, "recall": r, "n": int(actual[i]),
                           "f1": 2 * p * r / (p + r) if p + r else 0.0}
    report = {"n": len(labels), "acc": tp.sum().item() / max(len(labels), 1),
              "macro_f1": sum(c["f1"] for c in per_class.values()) / k,
              "per_class": per_class, "confusion": confusion.tolist()}
    if k == 2:
        report |= {key: per_class[names[1]][key] for key in ("precision", "recall", "f1")}
    return report


def _nice(x: float) -> int:
    """x rounded to one significant digit of 1, 2, 3, 4, 5, 6 or 8 (37 -> 40, 1234 -> 1000)."""
    if x < 1:
        return 1
    power = 10 ** math.floor(math.log10(x))
    return int(min((m * power for m in (1, 2, 3, 4, 5, 6, 8, 10)), key=lambda e: abs(e - x)))


def default_edges(lengths: Tensor, buckets: int = 5) -> list[int]:
    """Bucket edges for a corpus without fixed ones: 0 and the training lengths' quantiles
    (20%, 40%, ... for 5 buckets) rounded to nice numbers, so each bucket holds about a fair
    share of the texts and the names read well."""
    qs = torch.quantile(lengths.double(), torch.linspace(0, 1, buckets + 1)[1:-1].double())
    edges = [0]
    for e in map(_nice, qs.tolist()):
        if e > edges[-1]:
            edges.append(e)
    return edges


def predicted(probs: Tensor) -> Tensor:
    """(N,) class of each row of (N, K) probabilities: the most likely; with two classes the
    second wins a tie at 0.5, as it always has."""
    return (probs[:, 1] >= 0.5).long() if probs.shape[1] == 2 else probs.argmax(1)
