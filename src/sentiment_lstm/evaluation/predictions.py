"""Which reviews a checkpoint got right, one CSV row per review: `compare` pairs runs with it
(McNemar)."""

from pathlib import Path

import torch

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.io import atomic_write_text

PREDICTIONS_HEADER = "length,correct"


def save_predictions(correct: torch.Tensor, lengths: torch.Tensor, path: str | Path) -> None:
    """One CSV row per review in split order: its token count and 1 (right) or 0 (wrong)."""
    rows = (f"{n},{int(c)}\n" for n, c in zip(lengths.tolist(), correct.tolist()))
    atomic_write_text(PREDICTIONS_HEADER + "\n" + "".join(rows), path)


def load_predictions(path: str | Path) -> dict[str, torch.Tensor]:
    """save_predictions' file as {"correct": bool tensor, "lengths": int32 tensor}."""
    try:
        lines = Path(path).read_text().splitlines()
        if lines[0] != PREDICTIONS_HEADER:
            raise ValueError(f"header is not {PREDICTIONS_HEADER!r}")
        rows = [tuple(map(int, line.split(","))) for line in lines[1:]]
        if not rows or any(len(r) != 2 or r[0] < 0 or r[1] not in (0, 1) for r in rows):
            raise ValueError("rows are not non-negative length, 0 or 1")
    except (IndexError, ValueError) as e:  # ValueError includes UnicodeDecodeError
        raise CheckpointError(f"{path}: not a predictions file ({e})") from None
    lengths, correct = zip(*rows)
    return {"correct": torch.tensor(correct, dtype=torch.bool),
            "lengths": torch.tensor(lengths, dtype=torch.int32)}
