"""Where a model fails: its probabilities over an encoded split, and the reviews it gets wrong
most confidently."""

import torch
from torch import Tensor

from sentiment_lstm.data.batching import BucketBatchSampler, batches, collate
from sentiment_lstm.data.tokenizer import EncodedSplit
from sentiment_lstm.model.classifier import SentimentClassifier

EVAL_BATCH = 256


@torch.no_grad()
def split_probabilities(model: SentimentClassifier, split: EncodedSplit, max_len: int,
                        truncate: str, device: torch.device) -> Tensor:
    """P(class) (N, C) for every review of the split, in split order (eval mode, fp32)."""
    was_training = model.training
    model.eval()
    probs = torch.empty(len(split), model.head.out_features)
    sampler = BucketBatchSampler(split.lengths, EVAL_BATCH, shuffle=False)
    for batch in batches(split, sampler, max_len, truncate):
        b = batch.to(device)
        probs[batch.index] = model(b.tokens, b.lengths).float().softmax(-1).cpu()
    model.train(was_training)
    return probs


def confidently_wrong(probs: Tensor, labels: Tensor, k: int) -> list[int]:
    """Indices of the (at most) k misclassified reviews with the highest probability on
    the wrong class, most confident first."""
    wrong = (probs.argmax(1) != labels).nonzero().flatten()
    confidence = probs[wrong].max(1).values
    return wrong[torch.argsort(confidence, descending=True, stable=True)][:k].tolist()


def fed_ids(split: EncodedSplit, i: int, max_len: int, truncate: str) -> Tensor:
    """Review i's token ids as the model is fed them (truncated by batching.collate)."""
    batch = collate(split, torch.tensor([i]), max_len, truncate)
    return batch.tokens[0, :int(batch.lengths[0])]
