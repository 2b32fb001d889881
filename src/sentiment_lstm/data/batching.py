"""Length-bucketed batches: shuffle, sort in pools, truncate, pad -> (tokens, lengths, labels)."""

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from sentiment_lstm.data.tokenizer import EncodedSplit


@dataclass
class Batch:
    tokens: Tensor  # (B, T) int64, 0-padded
    lengths: Tensor  # (B,) tokens fed to the model, >= 1
    labels: Tensor  # (B,)
    full_lengths: Tensor  # (B,) tokens before truncation
    index: Tensor  # (B,) positions in the split

    def to(self, device: torch.device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) for t in vars(self).values()))


def fed_lengths(lengths: Tensor, max_len: int, truncate: str = "head") -> Tensor:
    """Tokens the model sees per review: at most max_len (any length for truncate="none"),
    and at least one (an empty review is fed a single padding token, so every encoder has a
    last state)."""
    return lengths.clamp(min=1, max=None if truncate == "none" else max_len)


def truncation_stats(split: EncodedSplit, max_len: int,
                     truncate: str = "head") -> dict[str, float]:
    lengths = split.lengths
    cut = (lengths - fed_lengths(lengths, max_len, truncate)).clamp(min=0)
    return {"truncated_reviews": (cut > 0).float().mean().item(),
            "truncated_tokens": (cut.sum() / lengths.sum().clamp(min=1)).item()}


class BucketBatchSampler:
    """Batches of similar length. Training: shuffle, cut into pools of `pool_batches` batches,
    sort each pool by length, batch it, shuffle the batches. Evaluation: sort everything,
    longest first, so the first batch's buffers have room for every later one's (with
    runtime.memory.reuse_freed_memory, growing batches would each take new memory).

    Under torchrun, rank r of `world` takes every world-th batch from r on: disjoint shards
    of one shared order (the seed and epoch fix it). In training every rank gets the same
    number of batches; the last `len(batches) % world` of the epoch's order are left out.
    """

    def __init__(self, lengths: Tensor, batch_size: int, pool_batches: int = 50,
                 shuffle: bool = True, seed: int = 0, rank: int = 0, world: int = 1):
        self.lengths, self.batch_size = lengths, batch_size
        self.pool = batch_size * pool_batches
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = -(-len(self.lengths) // self.batch_size)
        return n // self.world if self.shuffle else len(range(self.rank, n, self.world))

    def __iter__(self) -> Iterator[Tensor]:
        order = self._order()
        if self.shuffle:
            order = order[:len(self) * self.world]
        yield from order[self.rank::self.world]

    def _order(self) -> list[Tensor]:
        if not self.shuffle:
            order = torch.argsort(self.lengths, descending=True, stable=True)
            return list(order.split(self.batch_size))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=g)
        batches = []
        for pool in order.split(self.pool):
            pool = pool[torch.argsort(self.lengths[pool], stable=True)]
            batches += pool.split(self.batch_size)
        return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]


def collate(split: EncodedSplit, index: Tensor, max_len: int, truncate: str = "head") -> Batch:
    """Pad the reviews at `index`; a review over max_len keeps its first max_len tokens
    (head), its last (tail), or half of each (head_tail); truncate="none" keeps them all."""
    full = split.lengths[index]
    lengths = fed_lengths(full, max_len, truncate)
    tokens = torch.zeros(len(index), int(lengths.max()), dtype=torch.int64)
    for row, (i, n, m) in enumerate(zip(index.tolist(), full.tolist(), lengths.tolist())):
        ids = split.ids[split.offsets[i]:split.offsets[i] + n]
        if n > m:
            ids = {"head": ids[:m], "tail": ids[n - m:],
                   "head_tail": torch.cat([ids[:m // 2], ids[n - (m - m // 2):]])}[truncate]
        tokens[row, :len(ids)] = ids
    return Batch(tokens, lengths, split.labels[index], full, index)


def batches(split: EncodedSplit, sampler: BucketBatchSampler, max_len: int,
            truncate: str = "head") -> Iterator[Batch]:
    for index in sampler:
        yield collate(split, index, max_len, truncate)


def padding_fraction(split: EncodedSplit, sampler: BucketBatchSampler, max_len: int,
                     truncate: str = "head") -> float:
    """Share of the padded (B, T) cells that are padding, over one pass of the sampler."""
    lengths = fed_lengths(split.lengths, max_len, truncate)
    real = padded = 0
    for index in sampler:
        batch = lengths[index]
        real += int(batch.sum())
        padded += int(batch.max()) * len(index)
    return 1 - real / max(padded, 1)


def feed_stats(split: EncodedSplit, sampler: BucketBatchSampler, max_len: int,
               truncate: str = "head") -> dict[str, float]:
    """What batching does to a split, as `data/...` scalars: padding, truncation."""
    return {"data/padding_fraction": padding_fraction(split, sampler, max_len, truncate),
            **{f"data/{k}": v for k, v in truncation_stats(split, max_len, truncate).items()}}
