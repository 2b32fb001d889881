"""A checkpoint made ready to use: load a bundle (or average several) and classify texts.

    load_classifier("outputs/runs/<run>").predict(["A fine film.", "Dull."])
"""

import time
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import Tensor

from sentiment_lstm.checkpoint import CheckpointError, average_bundles, load_bundle
from sentiment_lstm.config import IMDB_BUCKET_EDGES
from sentiment_lstm.data.batching import BucketBatchSampler, batches, fed_lengths
from sentiment_lstm.data.tokenizer import encode
from sentiment_lstm.evaluation.metrics import bucket_names, bucketize, predicted
from sentiment_lstm.model.classifier import SentimentClassifier
from sentiment_lstm.runtime.device import pick_device


class Classifier:
    """A checkpoint made ready to use: tokenizer, model, truncation and length buckets."""

    def __init__(self, bundle: dict, device: str = "auto"):
        self.device = pick_device(device)
        self.labels: list[str] = bundle["labels"]
        self.config: dict = bundle["config"]  # the training run's, resolved
        self.encoder, self.seed = bundle["model_args"]["encoder"], self.config.get("seed")
        self.variant = bundle["model_args"].get("variant", "vanilla")  # older bundles: vanilla
        self.max_len, self.truncate = bundle["data"]["max_len"], bundle["data"]["truncate"]
        self.edges = self.config.get("eval", {}).get("bucket_edges") or IMDB_BUCKET_EDGES
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
        """Class probabilities (N, K) and token counts before truncation (N,), in input
        order."""
        split = encode(self.tokenizer, texts)
        probs = torch.empty(len(texts), len(self.labels))
        sampler = BucketBatchSampler(split.lengths, batch_size, shuffle=False)
        for batch in batches(split, sampler, self.max_len, self.truncate):
            b = batch.to(self.device)
            probs[batch.index] = self.model(b.tokens, b.lengths).float().softmax(-1).cpu()
        return probs, split.lengths

    def predict(self, texts: list[str], batch_size: int = 128) -> list[dict]:
        """One dict per text: the label, `probs` {label: probability} for every class and, with
        two classes, `prob_pos` (the second label's, IMDB's P(pos)). Empty or whitespace-only
        text has no label and is flagged."""
        probs, lengths = self.probabilities(texts, batch_size)
        names = bucket_names(self.edges)
        buckets = bucketize(lengths, self.edges).tolist()
        cut = (lengths > fed_lengths(lengths, self.max_len, self.truncate)).tolist()
        pred = predicted(probs).tolist()
        out = []
        for i, (text, n, k, c) in enumerate(zip(texts, lengths.tolist(), buckets, cut)):
            empty = not text.strip()
            row = {"label": None if empty else self.labels[pred[i]]}
            if len(self.labels) == 2:
                row["prob_pos"] = None if empty else round(probs[i, 1].item(), 6)
            row["probs"] = None if empty else {
                name: round(p, 6) for name, p in zip(self.labels, probs[i].tolist())}
            out.append(row | {"tokens": n, "bucket": names[k], "truncated": c, "empty": empty})
        return out


def load_classifier(path: str | Path | list, device: str = "auto") -> Classifier:
    """From a checkpoint file or a run directory (its best.ckpt); from a list of several,
    their weights averaged (checkpoint.average_bundles)."""
    paths = [path] if isinstance(path, (str, Path)) else path
    return Classifier(average_bundles(paths) if len(paths) > 1 else load_bundle(paths[0]), device)


def predict_throughput(clf: Classifier, texts: list[str], n: int = 5000) -> dict:
    """Batch-mode predict throughput (tokenizing included) on n of `texts`, spread over them
    (both labels, every length)."""
    texts = texts[:: max(1, len(texts) // n)][:n]
    clf.predict(texts[:256])  # warm-up
    t = time.perf_counter()
    clf.predict(texts)
    seconds = time.perf_counter() - t
    return {"predict_reviews": len(texts), "predict_s": seconds,
            "predict_reviews_per_s": len(texts) / seconds}
