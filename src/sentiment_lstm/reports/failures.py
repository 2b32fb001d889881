"""Where the model fails, on the dashboard people already watch: the test split's PR curve
(one per class) and confusion matrix, and the most confidently wrong validation reviews with
their running prediction as a text strip.

The trainer holds only encoded splits, so a review's text here is its token ids decoded by
the tokenizer: lowercased, markup stripped, rare words as [UNK].
"""

import copy
from pathlib import Path

import numpy as np
import torch

from sentiment_lstm.data.tokenizer import EncodedSplit
from sentiment_lstm.evaluation.explain import running_prediction
from sentiment_lstm.evaluation.failures import confidently_wrong, fed_ids
from sentiment_lstm.evaluation.metrics import classification_report, predicted
from sentiment_lstm.evaluation.scoring import split_probabilities
from sentiment_lstm.inference import load_classifier
from sentiment_lstm.reports.tracking import Tracker

BARS = "▁▂▃▄▅▆▇█"
STRIP_PREFIXES = 100  # running prediction at this many prefixes at most per review
SHOWN_TOKENS = 300


def strip(p: np.ndarray, width: int = 100) -> str:
    """P (n,) in [0, 1] as block characters, low to high, wrapped at `width`; '·' where not
    computed."""
    chars = "".join("·" if v != v else BARS[min(7, int(v * 8))] for v in p.tolist())
    return "\n".join(chars[i:i + width] for i in range(0, len(chars), width))


def review_markdown(text: str, label: str, probs: list[float], labels: list[str],
                    running: np.ndarray, n: int, every: str) -> str:
    """One wrong review as markdown: verdict, text and its running P(last class) strip."""
    words = text.split()
    shown = " ".join(words[:SHOWN_TOKENS]) + (" …" if len(words) > SHOWN_TOKENS else "")
    verdict = ", ".join(f"P({name}) = {p:.4f}" for name, p in zip(labels, probs))
    done = running[~np.isnan(running)]
    return (f"**true {label}**, model: {verdict}; {n} tokens fed\n\n> {shown}\n\n"
            f"running P({labels[-1]}), {every}, low {BARS[0]} to high {BARS[-1]}:\n\n"
            f"    {strip(done).replace(chr(10), chr(10) + '    ')}\n")


def wrong_reviews_markdown(model, tokenizer, split: EncodedSplit, probs: torch.Tensor,
                           labels: list[str], max_len: int, truncate: str, k: int) -> str:
    cpu = copy.deepcopy(model).cpu().float()
    parts = []
    for i in confidently_wrong(probs, split.labels, k):
        ids = fed_ids(split, i, max_len, truncate).long()
        running, how = running_prediction(cpu, ids, cut=STRIP_PREFIXES)
        every = f"{running.shape[0] if how.startswith('one') else 'sampled'} prefixes: {how}"
        parts.append(review_markdown(tokenizer.decode(ids.tolist()),
                                     labels[int(split.labels[i])], probs[i].tolist(), labels,
                                     running[:, -1], len(ids), every))
    return "\n\n---\n\n".join(parts) or "no validation review is misclassified"


def where_it_fails(tracker: Tracker, checkpoint: str | Path, splits: dict[str, EncodedSplit],
                   test_probs: torch.Tensor, device: torch.device, step: int,
                   k: int = 5) -> None:
    """Log test/pr_curve/<class> and test/confusion from the checkpoint's P(class) on the test
    split, and val/most_confidently_wrong (rank 0 only: the others' trackers write nothing)."""
    if tracker.writer is None:
        return
    clf = load_classifier(checkpoint, str(device))
    test = splits["test"]
    tracker.pr_curves("test", test.labels, test_probs, clf.labels, step)
    report = classification_report(predicted(test_probs), test.labels, clf.labels)
    tracker.confusion("test", report["confusion"], clf.labels, step)
    val = splits["val"]
    val_probs = split_probabilities(clf.model, val, clf.max_len, clf.truncate, clf.device)
    tracker.text("val/most_confidently_wrong", wrong_reviews_markdown(
        clf.model, clf.tokenizer, val, val_probs, clf.labels, clf.max_len, clf.truncate, k),
        step)
