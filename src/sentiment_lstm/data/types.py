"""The names every data stage shares: label names, a split's texts, the data error."""

LABELS = ("neg", "pos")

Texts = tuple[list[str], list[int]]  # (texts, label indices into LABELS)


class DataError(RuntimeError):
    pass
