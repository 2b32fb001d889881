"""The fused CPU path of one LSTM direction over time: forward and backward written by hand."""

import torch
from torch import Tensor


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
