"""The rules training follows from step to step: the learning rate, the adversarial
perturbation, early stopping, periodic checkpoints."""

import math
import time
from collections.abc import Callable

import torch


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to min_ratio at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def adversarial_noise(grad: torch.Tensor, eps: float) -> torch.Tensor:
    """The worst-case (to first order) perturbation of a batch's embeddings of L2 norm eps per
    review: grad (T, B, E), the loss gradient with respect to them."""
    norm = grad.pow(2).sum(dim=(0, 2), keepdim=True).sqrt()
    return eps * grad / norm.clamp_min(1e-12)


def out_of_patience(epoch: int, best_epoch: int, patience: int) -> bool:
    """Early stopping's rule, after `epoch` (0-based) was validated."""
    return epoch - best_epoch >= patience


class CheckpointCadence:
    """When training saves a resumable checkpoint mid-epoch: every `steps` optimizer steps,
    and once `minutes` of wall time have passed since the last save; 0 turns either off."""

    def __init__(self, steps: int, minutes: float,
                 clock: Callable[[], float] = time.perf_counter):
        self.steps, self.seconds, self.clock = steps, minutes * 60, clock
        self.last_save = clock()

    def time_due(self) -> bool:
        """This process's clock says so; under torchrun the ranks agree through an
        all-reduce, since each rank's clock differs."""
        return bool(self.seconds) and self.clock() - self.last_save >= self.seconds

    def due(self, step: int, time_due: bool) -> bool:
        return bool(self.steps and step % self.steps == 0) or time_due

    def saved(self) -> None:
        self.last_save = self.clock()
