import math

import pytest
import torch

from sentiment_lstm.evaluation.metrics import (
    accuracy_by_length,
    bucket_names,
    bucketize,
    classification_report,
    default_edges,
    mcnemar,
    wilson_interval,
)


def test_bucket_names_are_zero_padded_and_open_ended():
    assert bucket_names([0, 128, 256]) == ["0000-0127", "0128-0255", "0256-inf"]
    assert bucket_names([0, 10000]) == ["00000-09999", "10000-inf"]


def test_bucketize_edges_belong_to_the_upper_bucket():
    lengths = torch.tensor([0, 127, 128, 255, 256, 5000])
    assert bucketize(lengths, [0, 128, 256]).tolist() == [0, 0, 1, 1, 2, 2]


def test_wilson_interval_hand_computed():
    # p = 0.8, n = 10, z = 1.96: centre 0.7167, half-width 0.2254 (by hand)
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_accuracy_by_length_counts_and_accuracies():
    lengths = torch.tensor([10, 20, 130, 140, 150, 300])
    correct = torch.tensor([True, False, True, True, False, True])
    table = accuracy_by_length(correct, lengths, [0, 128, 256, 512])
    assert {k: (v["n"], v["correct"]) for k, v in table.items()} == {
        "0000-0127": (2, 1), "0128-0255": (3, 2), "0256-0511": (1, 1), "0512-inf": (0, 0)}
    assert table["0128-0255"]["acc"] == pytest.approx(2 / 3)
    assert math.isnan(table["0512-inf"]["acc"])
    assert sum(v["n"] for v in table.values()) == len(lengths)


def pairs(only_a: int, only_b: int, both: int = 3, neither: int = 2):
    a = [True] * only_a + [False] * only_b + [True] * both + [False] * neither
    b = [False] * only_a + [True] * only_b + [True] * both + [False] * neither
    return torch.tensor(a), torch.tensor(b)


@pytest.mark.parametrize("only_a, only_b, p", [
    (1, 5, 2 * (1 + 6) / 2**6),  # 0.21875
    (2, 10, 2 * (1 + 12 + 66) / 2**12),  # 0.0385742...
    (10, 2, 2 * (1 + 12 + 66) / 2**12),  # symmetric
    (4, 4, 1.0),  # capped at 1
    (0, 0, 1.0),  # no discordant pair: no evidence either way
])
def test_mcnemar_exact_hand_computed(only_a, only_b, p):
    result = mcnemar(*pairs(only_a, only_b))
    assert (result["b"], result["c"]) == (only_a, only_b)
    assert result["p"] == pytest.approx(p, rel=1e-9)


def test_classification_report_per_class_macro_f1_and_confusion():
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 2, 0])
    r = classification_report(pred, y, ["a", "b", "c"])
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["acc"] == pytest.approx(4 / 6)
    assert r["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "n": 2,
                                   "f1": pytest.approx(0.8)}
    assert r["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert "precision" not in r
    binary = classification_report(torch.tensor([1, 0, 1]), torch.tensor([1, 1, 0]), ["n", "p"])
    assert binary["precision"] == 0.5 and binary["recall"] == 0.5  # of the second class


def test_default_edges_are_rounded_quantiles_of_the_lengths():
    assert default_edges(torch.arange(1, 101)) == [0, 20, 40, 60, 80]
    assert default_edges(torch.tensor([3] * 50 + [1234] * 50)) == [0, 3, 1000]
    assert default_edges(torch.tensor([7] * 10)) == [0, 6]  # a tie rounds down
