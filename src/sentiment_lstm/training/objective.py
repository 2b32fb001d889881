"""What one training step minimises: cross-entropy, optionally also on adversarially moved
embeddings."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentiment_lstm.data.batching import Batch
from sentiment_lstm.runtime.device import autocast
from sentiment_lstm.training.schedule import adversarial_noise


def loss_and_gradient(net: nn.Module, b: Batch, class_weight: Tensor | None,
                      adversarial: float, embed_dim: int,
                      precision: str) -> tuple[Tensor, Tensor]:
    """(logits (B, C), loss) after backward: the loss's gradient, plus, with adversarial > 0,
    the gradient of the loss on the embeddings moved that far along it (Miyato et al. 2017),
    accumulated onto it. Costs a second forward and backward."""
    device = b.tokens.device
    noise = None  # with adversarial > 0, a zero perturbation whose gradient is the loss's
    if adversarial:
        noise = torch.zeros(*b.tokens.t().shape, embed_dim, device=device,  # (T, B, E)
                            requires_grad=True)
    with autocast(device, precision):
        logits = net(b.tokens, b.lengths, noise).float()
    loss = F.cross_entropy(logits, b.labels, weight=class_weight)
    loss.backward()
    if adversarial:
        with autocast(device, precision):
            adv = net(b.tokens, b.lengths, adversarial_noise(noise.grad, adversarial)).float()
        F.cross_entropy(adv, b.labels, weight=class_weight).backward()
    return logits, loss
