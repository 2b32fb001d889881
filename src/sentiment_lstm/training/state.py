"""What a run has done so far, saved in last.ckpt so that a resumed run goes on exactly, and
the error that ends a run which cannot go on."""

from dataclasses import asdict, dataclass, field


@dataclass
class EpochSums:
    """The current epoch's training loss sum, correct and seen reviews, over all ranks."""
    loss: float = 0.0
    correct: float = 0.0
    seen: float = 0.0

    def add(self, loss: float, correct: float, seen: float) -> None:
        self.loss, self.correct, self.seen = self.loss + loss, self.correct + correct, \
            self.seen + seen

    def mean_loss(self) -> float:
        return self.loss / max(self.seen, 1)

    def accuracy(self) -> float:
        return self.correct / max(self.seen, 1)


@dataclass
class TrainState:
    epoch: int = 0  # the epoch in progress (0-based)
    batch: int = 0  # batches of it done
    step: int = 0  # optimizer steps done, all epochs
    best_acc: float = -1.0  # the best validation accuracy so far, at best_epoch
    best_epoch: int = -1
    history: list[dict] = field(default_factory=list)  # one row per validated epoch
    train_tokens: int = 0
    train_time: float = 0.0  # seconds in training epochs, validation excluded
    skipped: int = 0  # batches skipped for a non-finite loss
    early_stopped: bool = False
    world: int = 1  # processes that trained it
    elapsed_s: float = 0.0  # wall time of every process of the run, as of its last save
    sums: EpochSums = field(default_factory=EpochSums)

    def to_dict(self) -> dict:  # plain types, loadable with weights_only
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainState":
        sums = d.get("sums", {})
        if isinstance(sums, list):  # written as [loss, correct, seen]
            sums = dict(zip(("loss", "correct", "seen"), sums))
        return cls(**{**d, "sums": EpochSums(**sums)})


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); last.ckpt holds the last good state."""
