"""Where a model fails: the reviews it gets wrong most confidently."""

import torch
from torch import Tensor

from sentiment_lstm.data.batching import collate
from sentiment_lstm.data.tokenizer import EncodedSplit


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
