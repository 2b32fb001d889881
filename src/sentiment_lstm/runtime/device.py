"""Where a model runs and in which precision: one choice for training and inference."""

import contextlib

import torch

from sentiment_lstm.config import ConfigError
from sentiment_lstm.runtime import distributed


def pick_device(name: str) -> torch.device:
    """auto | cpu | cuda | cuda:N; `cuda` is this process's own GPU under torchrun."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name} asked for, but CUDA is not available")
    return distributed.local_device(name)


def autocast(device: torch.device, precision: str):
    """bf16 autocast for trainer.precision=bf16; nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
