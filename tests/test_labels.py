"""Label sets from raw labels: names or integers, sorted or declared, and the errors."""

import pytest

from sentiment_lstm.data.labels import class_weights, encode_splits, label_set, names_of
from sentiment_lstm.data.types import DataError

WHERE = {"train": "train.csv", "validation": "val.csv", "test": "test.csv"}


def test_integers_sort_numerically_and_names_as_strings():
    assert names_of([10, "2", " 07 "], "x") == ["10", "2", "7"]
    assert label_set(["10", "2", "7", "2"], None, "x") == ["2", "7", "10"]
    assert label_set(["pos", "neg", "mixed"], None, "x") == ["mixed", "neg", "pos"]


def test_declared_labels_fix_the_order_and_indices_follow_them():
    raw = {"train": (["a", "b", "c"], ["pos", "neg", "pos"]), "test": (["d"], ["neg"])}
    names, enc = encode_splits(raw, ["pos", "neg"], WHERE)
    assert names == ["pos", "neg"]
    assert enc == {"train": (["a", "b", "c"], [0, 1, 0]), "test": (["d"], [1])}
    names, enc = encode_splits(raw, None, WHERE)
    assert names == ["neg", "pos"] and enc["train"][1] == [1, 0, 1]


@pytest.mark.parametrize("raw, declared, message", [
    ({"train": (["a", "b"], ["x", "x"])}, None, "train.csv: the training split has a single "
                                                "class 'x'"),
    ({"train": (["a", "b"], [1, "pos"])}, None, "labels of mixed types"),
    ({"train": (["a", "b"], ["x", "y"]), "validation": (["c"], ["z"])}, None,
     "val.csv: label 'z' in the validation split never occurs in training (labels: x, y)"),
    ({"train": (["a", "b"], ["x", "y"]), "test": (["c"], [3])}, None,
     "test.csv: label '3' in the test split never occurs"),
    ({"train": (["a", "b"], ["x", "y"])}, ["x"], "label 'y' is not in data.labels"),
    ({"train": (["a", "b"], [1.5, 2.5])}, None, "label 1.5 is a float"),
    ({"train": (["a", "b"], ["x", " "])}, None, "empty label"),
])
def test_bad_label_sets(raw, declared, message):
    with pytest.raises(DataError) as e:
        encode_splits(raw, declared, WHERE)
    assert message in str(e.value)


def test_class_weights_balance_the_training_counts():
    assert class_weights([0, 0, 0, 1], 2, None) is None
    assert class_weights([0, 0, 0, 1], 2, "auto") == [4 / 6, 2.0]
    assert class_weights([0, 1], 2, [1, 3]) == [1.0, 3.0]
    with pytest.raises(DataError, match="3 weights for 2 classes"):
        class_weights([0, 1], 2, [1, 2, 3])
