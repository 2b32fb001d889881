"""The fused CPU path of one LSTM direction over time: forward and backward written by hand.
The vanilla cell has its own loops; the variants (variants.py) share one generic pair, chosen
once per call, so the vanilla path does no extra work per step."""

import torch
from torch import Tensor

from sentiment_lstm.model.variants import Variant, get_variant


class FusedLSTMScan(torch.autograd.Function):
    """One LSTMLayer direction over time with a hand-written backward (BPTT): the same
    arithmetic as LSTMCell.step, without autograd's per-step bookkeeping. The input's share of
    every step's gates is one GEMM; backward sums each weight's gradient over all steps in one
    GEMM (autograd does one per step) and reuses the forward's buffer for the gate gradients
    (fresh memory costs page faults on CPU), and tanh(c_t) the forward computed. Every step's
    views are made before the loop, so each step dispatches only its math (8 ops forward, 13
    backward). Parity with the autograd loop is tested."""

    @staticmethod
    def forward(ctx, x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor,
                bias_hh: Tensor, valid: Tensor, reverse: bool, variant: str = "vanilla"):
        ctx.spec = None if variant == "vanilla" else get_variant(variant)
        if ctx.spec is not None:
            return _variant_forward(ctx, x, weight_ih, weight_hh, bias_ih + bias_hh, valid,
                                    reverse)
        T, B, E = x.shape
        H4 = weight_ih.shape[0]
        H = H4 // 4
        # The input's share of every step's gates in one GEMM; the loop adds the recurrent
        # share in place and applies the nonlinearities: i, f, g, o activations, (T, B, 4H).
        acts = torch.addmm(bias_ih + bias_hh, x.reshape(T * B, E), weight_ih.t()).view(T, B, H4)
        # Outputs and cells in time order, zero past each length; one extra slot of zeros
        # where the scan starts, so the state before step t is [t + p] and after it [t + a].
        hs, cs = x.new_empty(T + 1, B, H), x.new_empty(T + 1, B, H)
        tanh_cs = x.new_empty(T, B, H)  # tanh(c_t), kept for the backward
        a = 0 if reverse else 1
        start = T if reverse else 0
        hs[start].zero_()
        cs[start].zero_()
        h, c = hs[start], cs[start]
        partial = (~valid.all(1)).tolist()
        masks = valid.unsqueeze(-1).unbind(0)  # T x (B, 1)
        w = weight_hh.t()
        # Every step's views made once in C++ (unbind), not ~10 Python-dispatched views a step.
        acts4 = acts.view(T, B, 4, H)
        steps, if_s, g_s, o_s = (acts.unbind(0), acts4[:, :, :2].unbind(0),
                                 acts4[:, :, 2].unbind(0), acts4[:, :, 3].unbind(0))
        i_s, f_s = acts4[:, :, 0].unbind(0), acts4[:, :, 1].unbind(0)
        h_out, c_out, tanh_out = hs.unbind(0), cs.unbind(0), tanh_cs.unbind(0)
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            steps[t].addmm_(h, w)  # (B, 4H)
            if_s[t].sigmoid_()
            g_s[t].tanh_()
            o_s[t].sigmoid_()
            i, f, g, o = i_s[t], f_s[t], g_s[t], o_s[t]
            if partial[t]:  # past its length a sequence keeps its state and outputs zeros
                c_new = torch.addcmul(f * c, i, g)
                h_new = o * torch.tanh(c_new, out=tanh_out[t])
                torch.mul(c_new, masks[t], out=c_out[t + a])
                torch.mul(h_new, masks[t], out=h_out[t + a])
                h, c = torch.where(masks[t], h_new, h), torch.where(masks[t], c_new, c)
            else:
                c = torch.mul(f, c, out=c_out[t + a]).addcmul_(i, g)
                h = torch.mul(o, torch.tanh(c, out=tanh_out[t]), out=h_out[t + a])
        ctx.save_for_backward(x, weight_ih, weight_hh, valid, acts, hs, cs, tanh_cs)
        ctx.reverse, ctx.partial = reverse, partial
        return hs[:-1] if reverse else hs[1:], h.clone(), c.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out: Tensor, d_h: Tensor, d_c: Tensor):
        if ctx.spec is not None:
            return _variant_backward(ctx, d_out, d_h, d_c)
        x, weight_ih, weight_hh, valid, acts, hs, cs, tanh_cs = ctx.saved_tensors
        reverse, partial = ctx.reverse, ctx.partial
        T, B, H4 = acts.shape
        H = H4 // 4
        a, p = (0, 1) if reverse else (1, 0)
        masks = valid.unsqueeze(-1).unbind(0)  # T x (B, 1)
        d_act = acts.new_empty(B, 4, H)  # the loss's gradient by gate activation
        d_i, d_f, d_g, d_o = d_act.unbind(1)
        d_if, d_out_t = d_act[:, :2], d_out.unbind(0)
        # Every step's views made once in C++ (unbind), as in the forward.
        acts4 = acts.view(T, B, 4, H)
        steps, if_s, o_s = acts.unbind(0), acts4[:, :, :2].unbind(0), acts4[:, :, 3].unbind(0)
        i_s, f_s, g_s = (acts4[:, :, k].unbind(0) for k in range(3))
        c_s, tanh_s = cs.unbind(0), tanh_cs.unbind(0)
        dh, dc = d_h, d_c
        for t in (range(T) if reverse else range(T - 1, -1, -1)):
            i, f, g, o, tanh_c = i_s[t], f_s[t], g_s[t], o_s[t], tanh_s[t]
            dh = dh + (d_out_t[t] * masks[t] if partial[t] else d_out_t[t])
            dc_t = dc + torch.ops.aten.tanh_backward(dh * o, tanh_c)
            torch.mul(dc_t, g, out=d_i)
            torch.mul(dc_t, c_s[t + p], out=d_f)
            torch.mul(dc_t, i, out=d_g)
            torch.mul(dh, tanh_c, out=d_o)
            dc_next = dc_t * f
            # The gate gradients overwrite acts[t], which nothing reads after this.
            torch.ops.aten.sigmoid_backward(d_if, if_s[t], grad_input=if_s[t])
            torch.ops.aten.tanh_backward(d_g, g, grad_input=g)
            torch.ops.aten.sigmoid_backward(d_o, o, grad_input=o)
            dh, dc = _carry_back(steps[t], masks[t] if partial[t] else None, weight_hh, dh, dc,
                                 dc_next)  # steps[t]: acts[t] holds the gate gradients now
        return _grads(acts, x, weight_ih, hs, reverse, ctx.needs_input_grad[0])


def _variant_cell(spec: Variant, gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The new (c, h) from activated gates (B, n, H) and the old cell c (B, H)."""
    blk = dict(zip(spec.blocks, gates.unbind(1)))
    g, f = blk["g"], blk.get("f")
    write = blk["i"] * g if "i" in blk else g
    if spec.coupled:  # i = 1 - f
        write = g - f * g
    c_new = c + write if f is None else torch.addcmul(write, f, c)
    h_new = torch.tanh(c_new) if spec.cell_tanh else c_new
    return c_new, (blk["o"] * h_new if "o" in blk else h_new)


def _variant_forward(ctx, x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor,
                     valid: Tensor, reverse: bool):
    """FusedLSTMScan.forward for a variant: the same buffers, n gate blocks instead of 4."""
    spec = ctx.spec
    T, B, E = x.shape
    n = len(spec.blocks)
    nH = weight_ih.shape[0]
    H = nH // n
    acts = torch.addmm(bias, x.reshape(T * B, E), weight_ih.t()).view(T, B, nH)
    hs, cs = x.new_zeros(T + 1, B, H), x.new_zeros(T + 1, B, H)
    a = 0 if reverse else 1
    h, c = hs[T if reverse else 0], cs[T if reverse else 0]
    partial = (~valid.all(1)).tolist()
    masks = valid.unsqueeze(-1)
    w = weight_hh.t()
    sigmoids = [k for k, b in enumerate(spec.blocks) if b != "g"]
    kg = spec.blocks.index("g")
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        gates = acts[t].addmm_(h, w).view(B, n, H)
        for k in sigmoids:
            gates[:, k].sigmoid_()
        if spec.candidate == "tanh":
            gates[:, kg].tanh_()
        elif spec.candidate == "sigmoid":
            gates[:, kg].sigmoid_()
        c_new, h_new = _variant_cell(spec, gates, c)
        if partial[t]:  # past its length a sequence keeps its state and outputs zeros
            torch.mul(c_new, masks[t], out=cs[t + a])
            torch.mul(h_new, masks[t], out=hs[t + a])
            h, c = torch.where(masks[t], h_new, h), torch.where(masks[t], c_new, c)
        else:
            c, h = cs[t + a].copy_(c_new), hs[t + a].copy_(h_new)
    ctx.save_for_backward(x, weight_ih, weight_hh, valid, acts, hs, cs)
    ctx.reverse, ctx.partial = reverse, partial
    return hs[:-1] if reverse else hs[1:], h.clone(), c.clone()


def _variant_step_grads(spec: Variant, gates: Tensor, dh: Tensor, dc: Tensor, c_prev: Tensor,
                        c_t: Tensor) -> tuple[list[Tensor], Tensor]:
    """One step back: the gradients by pre-activation of each block (spec.blocks order) and
    the gradient reaching the previous cell, from dL/dh_t and dL/dc_t (the later steps')."""
    blk = dict(zip(spec.blocks, gates.unbind(1)))
    g, f, o = blk["g"], blk.get("f"), blk.get("o")
    act_c = torch.tanh(c_t) if spec.cell_tanh else c_t
    dh_o = dh if o is None else dh * o
    dc_t = dc + (torch.ops.aten.tanh_backward(dh_o, act_c) if spec.cell_tanh else dh_o)
    d = {}  # by activation
    if o is not None:
        d["o"] = dh * act_c
    i = (1 - f) if spec.coupled else blk.get("i")
    if "i" in blk:
        d["i"] = dc_t * g
    d["g"] = dc_t if i is None else dc_t * i
    if f is not None:
        d["f"] = dc_t * c_prev - dc_t * g if spec.coupled else dc_t * c_prev
    pre = {b: torch.ops.aten.sigmoid_backward(d[b], blk[b]) for b in d if b != "g"}
    if spec.candidate == "tanh":
        pre["g"] = torch.ops.aten.tanh_backward(d["g"], g)
    elif spec.candidate == "sigmoid":
        pre["g"] = torch.ops.aten.sigmoid_backward(d["g"], g)
    else:
        pre["g"] = d["g"]
    return [pre[b] for b in spec.blocks], (dc_t if f is None else dc_t * f)


def _variant_backward(ctx, d_out: Tensor, d_h: Tensor, d_c: Tensor):
    x, weight_ih, weight_hh, valid, acts, hs, cs = ctx.saved_tensors
    reverse, partial, spec = ctx.reverse, ctx.partial, ctx.spec
    T, B, nH = acts.shape
    n = len(spec.blocks)
    H = nH // n
    a, p = (0, 1) if reverse else (1, 0)
    masks = valid.unsqueeze(-1)
    dh, dc = d_h, d_c
    for t in (range(T) if reverse else range(T - 1, -1, -1)):
        dh = dh + (d_out[t] * masks[t] if partial[t] else d_out[t])
        pre, dc_next = _variant_step_grads(spec, acts[t].view(B, n, H), dh, dc, cs[t + p],
                                           cs[t + a])
        dg = torch.stack(pre, 1, out=acts[t].view(B, n, H)).view(B, nH)  # acts[t] is spent
        dh, dc = _carry_back(dg, masks[t] if partial[t] else None, weight_hh, dh, dc, dc_next)
    return _grads(acts, x, weight_ih, hs, reverse, ctx.needs_input_grad[0])


def _carry_back(dg: Tensor, mask: Tensor | None, weight_hh: Tensor, dh: Tensor, dc: Tensor,
                dc_next: Tensor) -> tuple[Tensor, Tensor]:
    """dh and dc for the step before, from the gate gradients dg (B, nH); `mask` (B, 1), given
    where some sequence has ended: past its length a sequence passes its gradient straight
    on."""
    if mask is None:
        return torch.mm(dg, weight_hh), dc_next
    dg.mul_(mask)
    return torch.where(mask, torch.mm(dg, weight_hh), dh), torch.where(mask, dc_next, dc)


def parameter_grads(acts: Tensor, x: Tensor, hs: Tensor,
                    reverse: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of weight_ih, weight_hh and the bias from the gate gradients of every
    step, left in acts (T, B, nH): each over all steps in one GEMM."""
    T, B, nH = acts.shape
    d_gates = acts.view(T * B, nH)
    d_w_ih = d_gates.t().mm(x.reshape(T * B, x.shape[-1]))
    d_w_hh = d_gates.t().mm((hs[1:] if reverse else hs[:-1]).reshape(T * B, hs.shape[-1]))
    return d_w_ih, d_w_hh, d_gates.sum(0)


def _grads(acts: Tensor, x: Tensor, weight_ih: Tensor, hs: Tensor, reverse: bool,
           input_grad: bool) -> tuple:
    """FusedLSTMScan.backward's return, one gradient (or None) per input of forward."""
    T, B, nH = acts.shape
    d_x = acts.view(T * B, nH).mm(weight_ih).view(T, B, -1) if input_grad else None
    d_w_ih, d_w_hh, d_b = parameter_grads(acts, x, hs, reverse)
    return d_x, d_w_ih, d_w_hh, d_b, d_b, None, None, None
