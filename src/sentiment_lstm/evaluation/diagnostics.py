"""Why the LSTM and the RNN differ, measured on a fixed probe batch: gate activations and
cell-state norms of the custom LSTM, and for both models ||dL/dh_t|| at every time step (the
vanishing-gradient picture). Training logs it every `diagnostics.every` steps (0: off).

    python -m sentiment_lstm.train diagnostics.every=100      # then TensorBoard: diag/...

The probe runs in eval mode (no dropout, no random draws) and differentiates the loss with
respect to the hidden states only (torch.autograd.grad), so it leaves the parameters'
gradients, the RNG stream and DDP's hooks alone: a run with diagnostics trains identically.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentiment_lstm.config import ConfigError
from sentiment_lstm.data.tokenizer import EncodedSplit
from sentiment_lstm.model.classifier import CustomLSTMEncoder, SentimentClassifier, TorchEncoder

GATES = ("input", "forget", "output")


def probe_batch(split: EncodedSplit, reviews: int, length: int) -> tuple[Tensor, ...]:
    """The first `reviews` reviews (split order) with at least `length` tokens, cut to their
    first `length`: (tokens (B, T), lengths (B,), labels (B,)), no padding."""
    index = (split.lengths >= length).nonzero().flatten()[:reviews]
    if len(index) == 0:
        raise ConfigError(f"diagnostics.length={length}: no validation review is that long")
    tokens = torch.stack([split.ids[split.offsets[i]:split.offsets[i] + length] for i in index])
    return tokens.long(), torch.full((len(index),), length), split.labels[index]


class UnrolledRNN(nn.Module):
    """A one-layer, one-direction tanh nn.RNN stepped in Python with its own weights (the same
    function), so each step's hidden state is a tensor the probe can differentiate against."""

    def __init__(self, rnn: nn.RNN):
        super().__init__()
        self.rnn, self.trace = rnn, []

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r = self.rnn
        h = x.new_zeros(x.shape[1], r.hidden_size)
        outs = []
        for x_t in F.linear(x, r.weight_ih_l0, r.bias_ih_l0).unbind(0):
            h = torch.tanh(x_t + F.linear(h, r.weight_hh_l0, r.bias_hh_l0))
            self.trace.append({"hidden": h})
            outs.append(h)
        return torch.stack(outs), h[None]


@contextmanager
def traced(model: SentimentClassifier) -> Iterator[dict[str, list[dict]]]:
    """While inside, every recurrent step of the encoder is recorded: {"l0": [step dicts],
    "l0_reverse": [...], ...}, steps in the order they ran. nn.LSTM is not traced."""
    enc, records, undo = model.encoder, {}, []
    for k, layer in enumerate(getattr(enc, "lstm", enc).layers):
        for d, module in enumerate(layer):
            name = f"l{k}" + ("_reverse" if d == 1 else "")
            if isinstance(enc, CustomLSTMEncoder):
                module.cell.trace = records[name] = []
                undo.append(lambda m=module: setattr(m.cell, "trace", None))
            elif isinstance(enc, TorchEncoder) and isinstance(module, nn.RNN):
                layer[d] = UnrolledRNN(module)
                records[name] = layer[d].trace
                undo.append(lambda layer=layer, d=d, m=module: layer.__setitem__(d, m))
    try:
        yield records
    finally:
        for restore in undo:
            restore()


def probe(model: SentimentClassifier, tokens: Tensor, lengths: Tensor,
          labels: Tensor) -> dict[str, dict[str, Tensor]]:
    """Per layer and direction (position order: t = 0 is the review's first token):
    "grad_h" (T,) mean over reviews of ||dL/dh_t||; for the custom LSTM also "forget" (T,) the
    mean forget gate, "cell_norm" (T,) the mean ||c_t||, and every gate's values for
    histograms ("input", "forget_all", "output": (T, B, H))."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), traced(model) as records:
            loss = F.cross_entropy(model(tokens, lengths), labels)
            hidden = [step["hidden"] for steps in records.values() for step in steps]
            grads = iter(torch.autograd.grad(loss, hidden)) if hidden else iter(())
    finally:
        model.train(was_training)
    report = {}
    for name, steps in records.items():
        def by_position(xs: list[Tensor], reverse: bool = name.endswith("_reverse")) -> Tensor:
            x = torch.stack([t.detach() for t in xs])  # (T, B, H) in the order the steps ran
            return x.flip(0) if reverse else x

        row = {"grad_h": by_position([next(grads) for _ in steps]).norm(dim=-1).mean(1)}
        if "cell" in steps[0]:
            gates = {k: by_position([s[k] for s in steps]) for k in GATES}
            cell = by_position([s["cell"] for s in steps])
            row |= {"forget": gates["forget"].mean((1, 2)),
                    "cell_norm": cell.norm(dim=-1).mean(1), "input": gates["input"],
                    "forget_all": gates["forget"], "output": gates["output"]}
        report[name] = row
    return report
