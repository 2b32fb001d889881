"""Classifier: embedding -> recurrent encoder -> pooling over time -> linear head.

Every encoder has one contract, forward(x (T, B, E), lengths (B,)) -> (out (T, B, D), last (B, D)),
with `out` zero at padded steps and `last` the state after each sequence's last real token
(for a backward direction: after its first token).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentiment_lstm.model.cells import LSTM


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of x (T, B, ...) within its own length; padding stays put."""
    T = x.shape[0]
    t = torch.arange(T, device=x.device)[:, None]  # (T, 1)
    idx = torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return x.gather(0, idx.view(T, -1, *([1] * (x.dim() - 2))).expand_as(x))


def _mask(lengths: Tensor, T: int) -> Tensor:  # (T, B, 1), True at real tokens
    return (torch.arange(T, device=lengths.device)[:, None] < lengths[None, :]).unsqueeze(-1)


class CustomLSTMEncoder(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int,
                 bidirectional: bool, dropout: float, kernel: str = "auto",
                 recurrent_dropout: float = 0.0, variant: str = "vanilla"):
        super().__init__()
        self.lstm = LSTM(input_size, hidden_size, num_layers, bidirectional, dropout, kernel,
                         recurrent_dropout, variant)
        self.directions = 2 if bidirectional else 1

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        out, (h_n, _) = self.lstm(x, lengths)
        last = h_n[-self.directions:].transpose(0, 1).reshape(x.shape[1], -1)  # (B, D*H)
        return out, last


class TorchEncoder(nn.Module):
    """nn.RNN or nn.LSTM on padded input (packing bypasses oneDNN on CPU), one module per layer
    and direction. Padding comes after each sequence, so a forward pass reads its state at
    length-1; the backward direction runs forward over the reversed sequence."""

    def __init__(self, rnn_class: type[nn.RNNBase], input_size: int, hidden_size: int,
                 num_layers: int, bidirectional: bool, dropout: float):
        super().__init__()
        self.dropout = dropout
        directions = 2 if bidirectional else 1
        self.layers = nn.ModuleList(
            nn.ModuleList(rnn_class(input_size if k == 0 else hidden_size * directions,
                                    hidden_size) for _ in range(directions))
            for k in range(num_layers))

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        T, B = x.shape[:2]
        at_last = (lengths - 1).view(1, B, 1)  # index of each sequence's last real step
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = F.dropout(x, self.dropout, self.training)
            fwd = self._run(layer[0], x)  # (T, B, H)
            outs, lasts = [fwd], [fwd.gather(0, at_last.expand(1, B, fwd.shape[-1]))[0]]
            if len(layer) == 2:
                bwd = self._run(layer[1], reverse_padded(x, lengths))
                outs.append(reverse_padded(bwd, lengths))
                lasts.append(bwd.gather(0, at_last.expand(1, B, bwd.shape[-1]))[0])
            x = torch.cat(outs, dim=-1) * _mask(lengths, T)
        return x, torch.cat(lasts, dim=-1)

    @staticmethod
    def _run(rnn: nn.Module, x: Tensor) -> Tensor:
        if x.device.type == "cpu" and isinstance(rnn, nn.LSTM):
            # oneDNN has no bf16 LSTM on CPUs without bf16 units: nn.LSTM stays float32 there
            with torch.autocast("cpu", enabled=False):
                return rnn(x.float())[0]
        return rnn(x)[0]


@torch.no_grad()
def init_recurrent(encoder: nn.Module, init: str) -> None:
    """init="orthogonal": each gate's H x H block of every recurrent weight orthogonal
    (Saxe et al. 2014), so early gradients neither explode nor vanish through the steps."""
    if init not in ("default", "orthogonal"):
        raise ValueError(f"unknown init {init!r}")
    if init == "default":  # the modules' own initialisation stands
        return
    for name, p in encoder.named_parameters():
        if "weight_hh" in name:
            for block in p.split(p.shape[1]):  # i, f, g, o (LSTM) or the one RNN block
                nn.init.orthogonal_(block)


class SentimentClassifier(nn.Module):
    def __init__(self, *, vocab_size: int, embed_dim: int = 128, hidden_size: int = 256,
                 num_layers: int = 1, encoder: str = "lstm", bidirectional: bool = False,
                 dropout: float = 0.0, embed_dropout: float = 0.0, word_dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, pooling: str = "last", init: str = "default",
                 kernel: str = "auto", variant: str = "vanilla", num_classes: int = 2,
                 pad_id: int = 0):
        """variant: the custom LSTM's gate ablation (model/variants.py); encoder=lstm only."""
        super().__init__()
        if pooling not in ("last", "max", "mean", "max_mean"):
            raise ValueError(f"unknown pooling {pooling!r}")
        self.pooling, self.embed_dropout, self.word_dropout = pooling, embed_dropout, word_dropout
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        args = (embed_dim, hidden_size, num_layers, bidirectional, dropout)
        if encoder == "lstm":
            self.encoder = CustomLSTMEncoder(*args, kernel, recurrent_dropout, variant)
        elif variant != "vanilla":
            raise ValueError(f"variant={variant!r} is implemented for the custom LSTM only")
        elif recurrent_dropout:
            raise ValueError("recurrent_dropout is implemented for the custom LSTM only")
        elif encoder in ("rnn", "torch_lstm"):
            self.encoder = TorchEncoder(nn.RNN if encoder == "rnn" else nn.LSTM, *args)
        else:
            raise ValueError(f"unknown encoder {encoder!r}")
        init_recurrent(self.encoder, init)
        self.drop = nn.Dropout(dropout)
        width = hidden_size * (2 if bidirectional else 1) * (2 if pooling == "max_mean" else 1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor, noise: Tensor | None = None) -> Tensor:
        """tokens (B, T), lengths (B,) -> logits (B, classes); noise (T, B, E), if given, is
        added to the embeddings (adversarial training's perturbation, train.py)."""
        x = self.embed(tokens.t())  # (T, B, E)
        if noise is not None:
            x = x + noise
        if self.word_dropout and self.training:  # drop whole tokens: (T, B, 1) mask
            x = x * F.dropout(x.new_ones(*x.shape[:2], 1), self.word_dropout)
        x = F.dropout(x, self.embed_dropout, self.training)
        out, last = self.encoder(x, lengths)  # (T, B, D), (B, D)
        feats = [last] if self.pooling == "last" else []
        if self.pooling in ("max", "max_mean"):
            feats.append(out.masked_fill(~_mask(lengths, out.shape[0]), float("-inf")).amax(0))
        if self.pooling in ("mean", "max_mean"):
            feats.append(out.sum(0) / lengths[:, None].to(out.dtype))  # out is 0 at padding
        return self.head(self.drop(torch.cat(feats, -1)))  # (B, num_classes)


@torch.no_grad()
def as_torch_lstm(model: SentimentClassifier, model_args: dict) -> SentimentClassifier:
    """The same classifier with the custom LSTM's weights copied into nn.LSTM modules
    (TorchEncoder, the inverse of cells.copy_from_nn_lstm): the same outputs, padding
    included, from an encoder that torch's ONNX exporter knows. Other encoders come back
    as they are."""
    if model_args["encoder"] != "lstm":
        return model
    twin = SentimentClassifier(**{**model_args, "encoder": "torch_lstm",
                                  "recurrent_dropout": 0.0})  # DropConnect is training only
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    twin.load_state_dict(state, strict=False)
    for layer, ref_layer in zip(model.encoder.lstm.layers, twin.encoder.layers):
        for direction, ref in zip(layer, ref_layer):  # forward, then backward: as TorchEncoder
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{name}_l0").copy_(getattr(direction.cell, name))
    return twin.eval()
