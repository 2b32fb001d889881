"""The config becomes objects here: the model (DDP-wrapped under torchrun), the optimizer
and the learning-rate schedule."""

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sentiment_lstm.model.classifier import SentimentClassifier
from sentiment_lstm.runtime import distributed
from sentiment_lstm.training.schedule import lr_factor


def build_model(model_args: dict, device: torch.device,
                seed: int) -> tuple[SentimentClassifier, nn.Module]:
    """(the model, what the training step calls): DDP's wrapper under torchrun, which starts
    every rank from rank 0's weights and averages gradients."""
    model = SentimentClassifier(**model_args).to(device)
    if distributed.world() == 1:
        return model, model
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                  else None)
    torch.manual_seed(seed + distributed.rank())  # each rank its own dropout masks
    return model, net


def build_optimizer(cfg: DictConfig, model: nn.Module, total_steps: int
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (fused: one kernel per step) with linear warm-up and cosine decay."""
    o = cfg.optim
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay,
                            fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(
        s, o.warmup_steps, total_steps, o.min_lr_ratio))
    return opt, sched
