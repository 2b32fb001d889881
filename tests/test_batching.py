import pytest
import torch

from sentiment_lstm.data.batching import (
    BucketBatchSampler,
    collate,
    padding_fraction,
    truncation_stats,
)
from sentiment_lstm.data.tokenizer import EncodedSplit


def split_of(reviews: list[list[int]], labels: list[int] | None = None) -> EncodedSplit:
    lengths = torch.tensor([len(r) for r in reviews])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    ids = torch.tensor([t for r in reviews for t in r], dtype=torch.int32)
    return EncodedSplit(ids, offsets, torch.tensor(labels or [0] * len(reviews)))


def test_collate_pads_truncates_head_or_tail_and_feeds_empty_reviews_one_pad():
    split = split_of([[5, 6, 7, 8, 9], [3, 4], []], [1, 0, 1])
    head = collate(split, torch.tensor([0, 1, 2]), max_len=3)
    assert head.tokens.tolist() == [[5, 6, 7], [3, 4, 0], [0, 0, 0]]
    assert head.lengths.tolist() == [3, 2, 1]
    assert head.full_lengths.tolist() == [5, 2, 0]
    assert head.labels.tolist() == [1, 0, 1]
    tail = collate(split, torch.tensor([0, 1]), max_len=3, truncate="tail")
    assert tail.tokens.tolist() == [[7, 8, 9], [3, 4, 0]]


def test_truncation_stats():
    split = split_of([[1] * 10, [1] * 4, [1] * 6])
    stats = truncation_stats(split, max_len=5)
    assert stats["truncated_reviews"] == pytest.approx(2 / 3)
    assert stats["truncated_tokens"] == pytest.approx(6 / 20)


def test_bucket_sampler_covers_every_review_once_per_epoch_and_reshuffles():
    lengths = torch.randint(1, 500, (1000,), generator=torch.Generator().manual_seed(0))
    sampler = BucketBatchSampler(lengths, batch_size=32, pool_batches=10, seed=1)
    epoch0 = [b.tolist() for b in sampler]
    assert len(epoch0) == len(sampler) == 32
    assert sorted(i for b in epoch0 for i in b) == list(range(1000))
    assert epoch0 == [b.tolist() for b in sampler]  # same epoch, same order
    sampler.set_epoch(1)
    assert epoch0 != [b.tolist() for b in sampler]


def test_bucketing_cuts_padding():
    lengths = torch.randint(1, 500, (2000,), generator=torch.Generator().manual_seed(0))
    split = split_of([[1] * n for n in lengths.tolist()])
    bucketed = padding_fraction(split, BucketBatchSampler(lengths, 32, pool_batches=50), 1000)
    random = padding_fraction(split, BucketBatchSampler(lengths, 32, pool_batches=1), 1000)
    assert bucketed < 0.05 < random


def test_eval_sampler_sorts_by_length_longest_first():
    lengths = torch.tensor([5, 1, 4, 2, 3])
    batches = [b.tolist() for b in BucketBatchSampler(lengths, 2, shuffle=False)]
    assert batches == [[0, 2], [4, 3], [1]]


def test_rank_shards_are_disjoint_equal_sized_slices_of_the_shared_order():
    lengths = torch.randint(1, 500, (1000,), generator=torch.Generator().manual_seed(0))
    whole = [b.tolist() for b in BucketBatchSampler(lengths, 32, pool_batches=10, seed=1)]
    ranks = [BucketBatchSampler(lengths, 32, pool_batches=10, seed=1, rank=r, world=3)
             for r in range(3)]
    shards = [[b.tolist() for b in s] for s in ranks]
    assert [len(s) for s in shards] == [len(s) for s in ranks] == [10, 10, 10]  # 32 // 3
    assert [b for r in range(3) for b in shards[r]] == \
        [b for r in range(3) for b in whole[:30][r::3]]  # batches 30, 31 are left out
    for s in ranks:
        s.set_epoch(1)
    assert [[b.tolist() for b in s] for s in ranks] != shards


def test_eval_shards_cover_every_review_exactly_once():
    lengths = torch.arange(1, 11)
    shards = [[i for b in BucketBatchSampler(lengths, 3, shuffle=False, rank=r, world=2)
               for i in b.tolist()] for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(10))
    assert shards[0] == [9, 8, 7, 3, 2, 1]


def test_head_tail_keeps_both_ends_and_none_keeps_everything():
    split = split_of([[1, 2, 3, 4, 5, 6, 7], [8, 9]])
    both = collate(split, torch.tensor([0, 1]), max_len=5, truncate="head_tail")
    assert both.tokens.tolist() == [[1, 2, 5, 6, 7], [8, 9, 0, 0, 0]]
    whole = collate(split, torch.tensor([0, 1]), max_len=5, truncate="none")
    assert whole.tokens.tolist() == [[1, 2, 3, 4, 5, 6, 7], [8, 9, 0, 0, 0, 0, 0]]
    assert whole.lengths.tolist() == [7, 2]
    assert truncation_stats(split, 5, "none") == {"truncated_reviews": 0.0,
                                                  "truncated_tokens": 0.0}
