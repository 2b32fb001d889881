"""A hand-written LSTM: cell -> layer over time -> (bidirectional) stack.

Parameter names, shapes and gate order (i, f, g, o) are those of nn.LSTM / nn.LSTMCell, so
weights copy across (see `copy_from_nn_lstm`) and tests prove the outputs and gradients match.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = tuple[Tensor, Tensor]  # (h, c), each (B, H)


class LSTMCell(nn.Module):
    trace: list[dict] | None = None  # diagnostics.py sets a list here to record every step

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)  # nn.LSTM's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def project(self, x: Tensor) -> Tensor:
        """The input's share of the gates, x @ W_ih^T + b_ih + b_hh: (..., I) -> (..., 4H)."""
        return F.linear(x, self.weight_ih, self.bias_ih + self.bias_hh)

    def step(self, x_proj: Tensor, state: State, weight_hh: Tensor | None = None) -> State:
        """One time step from the projected input x_proj (B, 4H); weight_hh, if given, stands
        in for self.weight_hh (LSTMLayer passes its recurrent-dropout copy)."""
        h, c = state
        w = self.weight_hh if weight_hh is None else weight_hh
        gates = torch.addmm(x_proj, h, w.t())  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)
        i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
        c = f * c + i * torch.tanh(g)  # forget some, write some
        h = o * torch.tanh(c)  # expose some of the cell
        if self.trace is not None:
            self.trace.append({"input": i, "forget": f, "output": o, "cell": c, "hidden": h})
        return h, c

    def forward(self, x: Tensor, state: State) -> State:  # x (B, I)
        return self.step(self.project(x), state)


class FusedLSTMScan(torch.autograd.Function):
    """One LSTMLayer direction over time with a hand-written backward (BPTT): the same
    arithmetic as LSTMCell.step, without autograd's per-step bookkeeping. The input's share of
    every step's gates is one GEMM; backward sums each weight's gradient over all steps in one
    GEMM (autograd does one per step) and reuses the forward's buffer for the gate gradients
    (fresh memory costs page faults on CPU). Parity with the autograd loop is tested."""

    @staticmethod
    def forward(ctx, x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor,
                bias_hh: Tensor, valid: Tensor, reverse: bool):
        T, B, E = x.shape
        H4 = weight_ih.shape[0]
        H = H4 // 4
        # The input's share of every step's gates in one GEMM; the loop adds the recurrent
        # share in place and applies the nonlinearities: i, f, g, o activations, (T, B, 4H).
        acts = torch.addmm(bias_ih + bias_hh, x.reshape(T * B, E), weight_ih.t()).view(T, B, H4)
        # Outputs and cells in time order, zero past each length; one extra slot of zeros
        # where the scan starts, so the state before step t is [t + p] and after it [t + a].
        hs, cs = x.new_empty(T + 1, B, H), x.new_empty(T + 1, B, H)
        a, p = (0, 1) if reverse else (1, 0)
        start = T if reverse else 0
        hs[start].zero_()
        cs[start].zero_()
        h, c = hs[start], cs[start]
        partial = (~valid.all(1)).tolist()
        masks = valid.unsqueeze(-1)
        w = weight_hh.t()
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            gates = acts[t].addmm_(h, w).view(B, 4, H)
            gates[:, :2].sigmoid_()
            gates[:, 2].tanh_()
            gates[:, 3].sigmoid_()
            i, f, g, o = gates.unbind(1)
            if partial[t]:  # past its length a sequence keeps its state and outputs zeros
                c_new = torch.addcmul(f * c, i, g)
                h_new = o * torch.tanh(c_new)
                torch.mul(c_new, masks[t], out=cs[t + a])
                torch.mul(h_new, masks[t], out=hs[t + a])
                h, c = torch.where(masks[t], h_new, h), torch.where(masks[t], c_new, c)
            else:
                c = torch.mul(f, c, out=cs[t + a]).addcmul_(i, g)
                h = torch.mul(o, torch.tanh(c), out=hs[t + a])
        ctx.save_for_backward(x, weight_ih, weight_hh, valid, acts, hs, cs)
        ctx.reverse, ctx.partial = reverse, partial
        return hs[:-1] if reverse else hs[1:], h.clone(), c.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out: Tensor, d_h: Tensor, d_c: Tensor):
        x, weight_ih, weight_hh, valid, acts, hs, cs = ctx.saved_tensors
        E = x.shape[-1]
        reverse, partial = ctx.reverse, ctx.partial
        T, B, H4 = acts.shape
        H = H4 // 4
        a, p = (0, 1) if reverse else (1, 0)
        masks = valid.unsqueeze(-1)
        d_act = acts.new_empty(B, 4, H)  # the loss's gradient by gate activation
        dh, dc = d_h, d_c
        for t in (range(T) if reverse else range(T - 1, -1, -1)):
            i, f, g, o = acts[t].view(B, 4, H).unbind(1)
            dh = dh + (d_out[t] * masks[t] if partial[t] else d_out[t])
            tanh_c = torch.tanh(cs[t + a])
            dc_t = dc + torch.ops.aten.tanh_backward(dh * o, tanh_c)
            torch.mul(dc_t, g, out=d_act[:, 0])
            torch.mul(dc_t, cs[t + p], out=d_act[:, 1])
            torch.mul(dc_t, i, out=d_act[:, 2])
            torch.ops.aten.tanh_backward(d_act[:, 2], g, grad_input=d_act[:, 2])
            torch.mul(dh, tanh_c, out=d_act[:, 3])
            dc_next = dc_t * f
            # The gate gradients overwrite acts[t], which nothing reads after this.
            dg = torch.ops.aten.sigmoid_backward(d_act.view(B, H4), acts[t], grad_input=acts[t])
            dg.view(B, 4, H)[:, 2].copy_(d_act[:, 2])
            if partial[t]:  # past its length a sequence passes its gradient straight on
                dg.mul_(masks[t])
                dh = torch.where(masks[t], torch.mm(dg, weight_hh), dh)
                dc = torch.where(masks[t], dc_next, dc)
            else:
                dh, dc = torch.mm(dg, weight_hh), dc_next
        d_gates = acts.view(T * B, H4)
        d_x = d_gates.mm(weight_ih).view(T, B, E) if ctx.needs_input_grad[0] else None
        d_w_ih = d_gates.t().mm(x.reshape(T * B, E))
        d_w_hh = d_gates.t().mm((hs[1:] if reverse else hs[:-1]).reshape(T * B, H))
        d_b = d_gates.sum(0)
        return d_x, d_w_ih, d_w_hh, d_b, d_b, None, None


class LSTMLayer(nn.Module):
    """Runs a cell over time in one direction. Steps past a sequence's length leave its state
    unchanged and output zeros, so padding never changes a result. fused=True takes
    FusedLSTMScan where it applies (float32/64 without autocast, no trace being recorded),
    else the autograd loop below, which bf16 autocast and diagnostics use.

    recurrent_dropout > 0 drops that share of the hidden-to-hidden weights in training, one
    mask per forward pass shared by every time step (DropConnect, as AWD-LSTM's weight drop,
    Merity et al. 2018): the recurrence is regularised and both paths keep their speed."""

    def __init__(self, input_size: int, hidden_size: int, reverse: bool = False,
                 fused: bool = True, recurrent_dropout: float = 0.0):
        super().__init__()
        self.cell = LSTMCell(input_size, hidden_size)
        self.reverse, self.fused, self.recurrent_dropout = reverse, fused, recurrent_dropout

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        T, B, _ = x.shape  # x (T, B, I), lengths (B,) on x's device
        valid = torch.arange(T, device=x.device)[:, None] < lengths[None, :]  # (T, B)
        w_hh = self.cell.weight_hh
        if self.recurrent_dropout and self.training:
            w_hh = F.dropout(w_hh, self.recurrent_dropout)
        if (self.fused and self.cell.trace is None and x.dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled(x.device.type)):
            cell = self.cell
            out, h, c = FusedLSTMScan.apply(x, cell.weight_ih, w_hh, cell.bias_ih, cell.bias_hh,
                                            valid, self.reverse)
            return out, (h, c)
        h = c = x.new_zeros(B, self.cell.hidden_size)
        # One GEMM for every step's input share; unbind (not xp[t]) keeps backward O(T).
        steps = self.cell.project(x).unbind(0)  # T x (B, 4H)
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
                 bidirectional: bool = False, dropout: float = 0.0, fused: bool = True,
                 recurrent_dropout: float = 0.0):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.bidirectional, self.dropout = bidirectional, dropout
        directions = (False, True) if bidirectional else (False,)
        width = hidden_size * len(directions)
        self.layers = nn.ModuleList(
            nn.ModuleList(LSTMLayer(input_size if k == 0 else width, hidden_size, r, fused,
                                    recurrent_dropout) for r in directions)
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
    for k, layer in enumerate(custom.layers):
        for direction in layer:
            suffix = f"l{k}" + ("_reverse" if direction.reverse else "")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(direction.cell, name).copy_(getattr(ref, f"{name}_{suffix}"))
