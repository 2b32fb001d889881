"""A hand-written LSTM: cell -> layer over time -> (bidirectional) stack.

Parameter names, shapes and gate order (i, f, g, o) are those of nn.LSTM / nn.LSTMCell, so
weights copy across (see `copy_from_nn_lstm`) and tests prove the outputs and gradients match.
`variant` (variants.py) takes one piece out of the cell for gate ablations; "vanilla" is the
cell above, and a variant's constant gates have no weights.
"""

import importlib.util
import logging
import math
from functools import cache
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentiment_lstm.model import cpp_scan
from sentiment_lstm.model.scan import FusedLSTMScan
from sentiment_lstm.model.variants import get_variant

State = tuple[Tensor, Tensor]  # (h, c), each (B, H)
KERNELS = ("auto", "triton", "cpp", "scan", "loop")
log = logging.getLogger(__name__)


@cache
def _triton_importable() -> bool:
    return importlib.util.find_spec("triton") is not None


def _triton_scan() -> ModuleType:
    """model/triton_scan, imported on first use: CPU runs never import triton."""
    from sentiment_lstm.model import triton_scan

    return triton_scan


@cache
def _log_once(message: str) -> None:
    log.warning(message)


class LSTMCell(nn.Module):
    trace: list[dict] | None = None  # diagnostics.py sets a list here to record every step

    def __init__(self, input_size: int, hidden_size: int, variant: str = "vanilla"):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.variant, self.spec = variant, get_variant(variant)
        rows = len(self.spec.blocks) * hidden_size  # 4H for vanilla: i, f, g, o
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)  # nn.LSTM's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def project(self, x: Tensor) -> Tensor:
        """The input's share of the gates, x @ W_ih^T + b_ih + b_hh: (..., I) -> (..., nH)."""
        return F.linear(x, self.weight_ih, self.bias_ih + self.bias_hh)

    def step(self, x_proj: Tensor, state: State, weight_hh: Tensor | None = None) -> State:
        """One time step from the projected input x_proj (B, nH); weight_hh, if given, stands
        in for self.weight_hh (LSTMLayer passes its recurrent-dropout copy)."""
        h, c = state
        w = self.weight_hh if weight_hh is None else weight_hh
        gates = torch.addmm(x_proj, h, w.t())  # (B, nH)
        if self.variant != "vanilla":
            return self._variant_step(gates, c)
        i, f, g, o = gates.chunk(4, dim=1)
        i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
        c = f * c + i * torch.tanh(g)  # forget some, write some
        h = o * torch.tanh(c)  # expose some of the cell
        if self.trace is not None:
            self.trace.append({"input": i, "forget": f, "output": o, "candidate": g.tanh(),
                               "cell": c, "hidden": h})
        return h, c

    def _variant_step(self, gates: Tensor, c: Tensor) -> State:
        spec = self.spec
        blk = dict(zip(spec.blocks, gates.chunk(len(spec.blocks), dim=1)))  # each (B, H)
        f = torch.sigmoid(blk["f"]) if "f" in blk else None  # None: the gate is 1
        i = torch.sigmoid(blk["i"]) if "i" in blk else None
        if spec.coupled:
            i = 1 - f
        o = torch.sigmoid(blk["o"]) if "o" in blk else None
        g = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda v: v}[
            spec.candidate](blk["g"])
        write = g if i is None else i * g
        c = c + write if f is None else f * c + write
        h = torch.tanh(c) if spec.cell_tanh else c
        h = h if o is None else o * h
        if self.trace is not None:  # constant gates recorded as ones: diagnostics' keys stay
            one = torch.ones_like(c)
            self.trace.append({"input": one if i is None else i, "forget": one if f is None else f,
                               "output": one if o is None else o, "cell": c, "hidden": h})
        return h, c

    def forward(self, x: Tensor, state: State) -> State:  # x (B, I)
        return self.step(self.project(x), state)


class LSTMLayer(nn.Module):
    """Runs a cell over time in one direction. Steps past a sequence's length leave its state
    unchanged and output zeros, so padding never changes a result.

    kernel picks the path (every one computes the same thing; parity is tested):
    - "loop": the autograd loop below, over LSTMCell.step; diagnostics always take it;
    - "scan": FusedLSTMScan (hand-written backward) for float32/64 without autocast;
    - "cpp": CppLSTMScan (model/cpp_scan.py), the scan's time loop in C++, for the vanilla
      cell on the CPU, float32/64 without autocast;
    - "triton": TritonLSTMScan (model/triton_scan.py), also under bf16 autocast;
    - "auto": triton for CUDA tensors where Triton is importable, cpp on the CPU where it
      builds, else scan.
    A path that cannot serve a case falls back to the next (triton or cpp -> scan -> loop)
    and logs why, once per reason; auto falls back from cpp only for a reason of the machine
    (no compiler), not for a variant or a dtype.

    recurrent_dropout > 0 drops that share of the hidden-to-hidden weights in training, one
    mask per forward pass shared by every time step (DropConnect, as AWD-LSTM's weight drop,
    Merity et al. 2018): the recurrence is regularised and both paths keep their speed."""

    def __init__(self, input_size: int, hidden_size: int, reverse: bool = False,
                 kernel: str = "auto", recurrent_dropout: float = 0.0, variant: str = "vanilla"):
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r} (one of {', '.join(KERNELS)})")
        self.cell = LSTMCell(input_size, hidden_size, variant)
        self.reverse, self.kernel, self.recurrent_dropout = reverse, kernel, recurrent_dropout

    def path(self, x: Tensor) -> str:
        """The path this call takes: the asked-for kernel, or where it falls back to."""
        if self.cell.trace is not None:
            return "loop"  # the trace records LSTMCell.step's gates
        kernel = self.kernel
        if kernel == "auto":
            kernel = "triton" if x.is_cuda and _triton_importable() else "cpp"
        if kernel == "cpp":
            reason = cpp_scan.unavailable_reason(x, self.cell.variant)
            if reason is None:
                return "cpp"
            if self.kernel == "cpp" or reason == cpp_scan.build_error():
                _log_once(f"model.kernel={self.kernel} falls back to the scan: {reason}")
            kernel = "scan"
        if kernel == "triton":
            reason = (f"variant {self.cell.variant}" if self.cell.variant != "vanilla"
                      else _triton_scan().unsupported_reason(x, self.cell.weight_hh))
            if reason is None:
                return "triton"
            _log_once(f"model.kernel=triton falls back to the scan: {reason}")
            kernel = "scan"
        if kernel == "scan":
            if x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled(
                    x.device.type):
                return "scan"
            if self.kernel == "scan":
                _log_once(f"model.kernel=scan falls back to the autograd loop: {x.dtype} or "
                          "autocast")
        return "loop"

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        T, B, _ = x.shape  # x (T, B, I), lengths (B,) on x's device
        valid = torch.arange(T, device=x.device)[:, None] < lengths[None, :]  # (T, B)
        w_hh = self.cell.weight_hh
        if self.recurrent_dropout and self.training:
            w_hh = F.dropout(w_hh, self.recurrent_dropout)
        path, cell = self.path(x), self.cell
        if path == "triton":
            out, h, c = _triton_scan().TritonLSTMScan.apply(
                x, cell.weight_ih, w_hh, cell.bias_ih, cell.bias_hh, valid, self.reverse)
            return out, (h, c)
        if path == "cpp":
            out, h, c = cpp_scan.CppLSTMScan.apply(x, cell.weight_ih, w_hh, cell.bias_ih,
                                                   cell.bias_hh, valid, self.reverse)
            return out, (h, c)
        if path == "scan":
            out, h, c = FusedLSTMScan.apply(x, cell.weight_ih, w_hh, cell.bias_ih, cell.bias_hh,
                                            valid, self.reverse, cell.variant)
            return out, (h, c)
        h = c = x.new_zeros(B, self.cell.hidden_size)
        # One GEMM for every step's input share; unbind (not xp[t]) keeps backward O(T).
        steps = self.cell.project(x).unbind(0)  # T x (B, nH)
        masks = valid.unsqueeze(-1).unbind(0)  # T x (B, 1)
        full = int(lengths.min())  # steps before this are real for every sequence: no masking
        outs: list[Tensor] = [x] * T
        for t in (range(T - 1, -1, -1) if self.reverse else range(T)):
            h_new, c_new = self.cell.step(steps[t], (h, c), w_hh)
            if t < full:
                h, c = h_new, c_new
            else:
                h, c = torch.where(masks[t], h_new, h), torch.where(masks[t], c_new, c)
            outs[t] = h
        out = torch.stack(outs)  # (T, B, H)
        if full < T:  # the forward direction carries its last state into the padding
            out = out * valid.unsqueeze(-1)
        return out, (h, c)


class LSTM(nn.Module):
    """Stacked, optionally bidirectional LSTM with nn.LSTM's output contract:
    forward(x (T, B, I), lengths (B,)) -> (out (T, B, D*H), (h_n, c_n) each (L*D, B, H))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, kernel: str = "auto",
                 recurrent_dropout: float = 0.0, variant: str = "vanilla"):
        super().__init__()
        self.hidden_size, self.num_layers, self.variant = hidden_size, num_layers, variant
        self.bidirectional, self.dropout = bidirectional, dropout
        directions = (False, True) if bidirectional else (False,)
        width = hidden_size * len(directions)
        self.layers = nn.ModuleList(
            nn.ModuleList(LSTMLayer(input_size if k == 0 else width, hidden_size, r, kernel,
                                    recurrent_dropout, variant) for r in directions)
            for k in range(num_layers))

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        hs, cs = [], []
        for k, layer in enumerate(self.layers):
            if k > 0:  # dropout between layers, as nn.LSTM(dropout=...)
                x = F.dropout(x, self.dropout, self.training)
            outs = []
            for direction in layer:
                out, (h, c) = direction(x, lengths)
                outs.append(out)
                hs.append(h)
                cs.append(c)
            x = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
        return x, (torch.stack(hs), torch.stack(cs))


@torch.no_grad()
def copy_from_nn_lstm(custom: LSTM, ref: nn.LSTM) -> None:
    """Load an nn.LSTM's weights into the custom LSTM (same sizes, layers and directions)."""
    if custom.variant != "vanilla":
        raise ValueError(f"copy_from_nn_lstm: the {custom.variant} variant has no nn.LSTM "
                         "counterpart (only vanilla has its weights)")
    for k, layer in enumerate(custom.layers):
        for direction in layer:
            suffix = f"l{k}" + ("_reverse" if direction.reverse else "")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(direction.cell, name).copy_(getattr(ref, f"{name}_{suffix}"))
