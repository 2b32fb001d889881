"""Class labels: the names raw labels (strings or integers) get, their indices, and class
weights from the training counts.

A label set is taken from the training split and sorted (integers numerically, names as
strings), unless it is declared (data.labels), which fixes the order.
"""

import re
from collections import Counter

from sentiment_lstm.data.types import DataError, RawTexts, Texts

_INT = re.compile(r"[+-]?\d+")


def _name(value, where: str) -> tuple[bool, str]:
    """(is an integer, its name): 7, "7" and " 07 " are the integer 7, named "7"."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(f"{where}: label {value!r} is a {type(value).__name__}; a label is a "
                        "name or an integer")
    text = str(value).strip()
    if not text:
        raise DataError(f"{where}: a row has an empty label")
    if isinstance(value, int) or _INT.fullmatch(text):
        return True, str(int(text))
    return False, text


def names_of(values: list, where: str) -> list[str]:
    """Each raw label as its name; integers and names mixed in one split are refused."""
    kinds, names = set(), []
    for v in values:
        is_int, name = _name(v, where)
        kinds.add(is_int)
        names.append(name)
        if len(kinds) > 1:
            raise DataError(f"{where}: labels of mixed types: integers and names (e.g. "
                            f"{name!r}); use one kind")
    return names


def label_set(train: list[str], declared: list | None, where: str) -> list[str]:
    """The run's label names in index order: `declared` as given, else the training labels
    sorted (numerically when they are integers)."""
    seen = set(train)
    if declared is not None:
        names = names_of(list(declared), "data.labels")
        if len(set(names)) != len(names):
            raise DataError(f"data.labels={list(declared)} names a label twice")
        unknown = sorted(seen - set(names))
        if unknown:
            raise DataError(f"{where}: label {unknown[0]!r} is not in data.labels={names}")
    else:
        names = sorted(seen, key=lambda n: (int(n), "") if _INT.fullmatch(n) else (0, n))
    if len(seen) < 2:
        raise DataError(f"{where}: the training split has a single class "
                        f"{next(iter(seen), None)!r}; a classifier needs at least 2")
    return names


def encode_splits(raw: dict[str, RawTexts], declared: list | None,
                  where: dict[str, str]) -> tuple[list[str], dict[str, Texts]]:
    """Label names (from raw["train"] or `declared`) and every split with label indices; a
    label in another split that the set lacks is an error naming its split and source."""
    named = {s: names_of(y, where[s]) for s, (_, y) in raw.items()}
    names = label_set(named["train"], declared, where["train"])
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for split, (texts, _) in raw.items():
        unseen = sorted({n for n in named[split] if n not in index})
        if unseen:
            raise DataError(f"{where[split]}: label {unseen[0]!r} in the {split} split never "
                            f"occurs in training (labels: {', '.join(names)})")
        out[split] = (texts, [index[n] for n in named[split]])
    return names, out


def indices_in(values: list, names: list[str], where: str) -> list[int]:
    """Each raw label of a file scored against a trained run's label names: a name
    (case-insensitive) or, where the names are not integers themselves, its index."""
    index = {n.lower(): i for i, n in enumerate(names)}
    if not all(_INT.fullmatch(n) for n in names):
        index |= {str(i): i for i in range(len(names))}
    found = [index.get(_name(v, where)[1].lower()) for v in values]
    if None in found:
        row = found.index(None)
        raise DataError(f"{where}: unknown label {values[row]!r} (expected one of "
                        f"{', '.join(index)})")
    return found


def class_weights(labels: list[int], n_classes: int, spec) -> list[float] | None:
    """loss.class_weights: None (unweighted), "auto" (n / (k * count): balanced, as
    scikit-learn's) or one positive weight per class."""
    if spec is None:
        return None
    if spec == "auto":
        counts = Counter(labels)
        return [len(labels) / (n_classes * counts[k]) if counts[k] else 0.0
                for k in range(n_classes)]
    weights = [float(w) for w in spec]
    if len(weights) != n_classes:
        raise DataError(f"loss.class_weights has {len(weights)} weights for {n_classes} "
                        "classes")
    return weights
