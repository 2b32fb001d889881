"""The rules training follows from step to step: the learning rate, the adversarial
perturbation, early stopping."""

import math

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
