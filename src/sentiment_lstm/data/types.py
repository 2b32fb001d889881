"""The names every data stage shares: IMDB's label names, a split's texts, the data error."""

LABELS = ("neg", "pos")  # IMDB's sentiment classes, in index order

Texts = tuple[list[str], list[int]]  # (texts, label indices into the run's label names)
RawTexts = tuple[list[str], list]  # (texts, labels as read: names or integers)


class DataError(RuntimeError):
    pass
