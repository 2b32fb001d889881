"""One LSTMLayer direction over time as two Triton kernels, forward and backward (BPTT).

The same contract and arithmetic as `FusedLSTMScan` in cells.py. The input's share of every
step's gates is one GEMM outside the kernels; one launch walks time (backwards when reverse)
with a batch tile per program; one launch carries dh and dc back through time and writes the
gate gradients (T, B, 4H); the weight, bias and input gradients are then single GEMMs.

A program owns BLOCK_B sequences and all H units, visited in chunks of BLOCK_H so registers
never hold more than a (BLOCK_B, BLOCK_H) tile per gate at any H. The state crosses steps
through the per-step buffers backward needs anyway (h and c per step, each step reading the
one before, so nothing is overwritten while read); a barrier ends each step. Products use
fp32 (`input_precision="ieee"`, no TF32) or fp64. Under bf16 autocast the GEMMs and the
recurrent products take bf16 operands with fp32 accumulation; the cell state stays fp32.

Triton's interpreter runs the same kernels on CPU tensors: TRITON_INTERPRET=1 must be set
before triton is first imported (its own library functions are decorated then) and stay set.
It has no libdevice, so tanh is written with exp, and no bf16 tl.dot (see _dot).
"""

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU paths in cells.py serve; unsupported_reason says why
    triton = None

BLOCK_B = 16  # sequences per program; tl.dot needs every block dim >= 16
MAX_BLOCK_H = 64  # hidden units per chunk
MM_IEEE, MM_BF16, MM_BF16_EMULATED = 0, 1, 2  # how the recurrent products are taken

if triton is not None:
    from triton.runtime.interpreter import InterpretedFunction

    @triton.jit
    def _sigmoid(x):
        return 1.0 / (1.0 + tl.exp(-x))

    @triton.jit
    def _tanh(x):
        return 2.0 * _sigmoid(2.0 * x) - 1.0

    @triton.jit
    def _dot(a, w, MM: tl.constexpr):
        if MM == 1:  # bf16 operands (w is stored bf16), fp32 accumulation
            return tl.dot(a.to(tl.bfloat16), w, out_dtype=tl.float32)
        elif MM == 2:  # the same rounding where bf16 tl.dot is missing (interpreter)
            a = a.to(tl.bfloat16).to(tl.float32)
            return tl.dot(a, w.to(tl.float32), input_precision="ieee")
        else:
            return tl.dot(a, w, input_precision="ieee")

    @triton.jit
    def _scan_fwd(xp_ptr, w_ptr, valid_ptr, acts_ptr, hs_ptr, cs_ptr, out_ptr, T, B,
                  H: tl.constexpr, REVERSE: tl.constexpr, BLOCK_B: tl.constexpr,
                  BLOCK_H: tl.constexpr, MM: tl.constexpr, ACC: tl.constexpr):
        """xp (T, B, 4H) input shares -> acts (T, B, 4H) i, f, g, o; hs, cs (T, B, H) the
        carried state after each step; out (T, B, H) zero past each length."""
        rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)  # (BB,)
        row_ok = rows < B
        lanes = tl.arange(0, BLOCK_H)
        s = 0
        while s < T:  # a while loop: the interpreter cannot range() over a runtime T
            if REVERSE:
                t, tp = T - 1 - s, T - s
            else:
                t, tp = s, s - 1
            v = tl.load(valid_ptr + t * B + rows, mask=row_ok, other=0) != 0  # (BB,)
            here = (t * B + rows).to(tl.int64)[:, None]  # (BB, 1)
            prev = (tp * B + rows).to(tl.int64)[:, None]
            prev_ok = row_ok[:, None] & (s > 0)  # the state before the first step is zero
            for n0 in range(0, H, BLOCK_H):
                cols = n0 + lanes  # (BN,) the hidden units of this chunk
                col_ok = cols < H
                zi = tl.zeros((BLOCK_B, BLOCK_H), dtype=ACC)
                zf = tl.zeros((BLOCK_B, BLOCK_H), dtype=ACC)
                zg = tl.zeros((BLOCK_B, BLOCK_H), dtype=ACC)
                zo = tl.zeros((BLOCK_B, BLOCK_H), dtype=ACC)
                for k0 in range(0, H, BLOCK_H):  # the recurrent share, h_prev @ W_hh^T
                    ks = k0 + lanes
                    h = tl.load(hs_ptr + prev * H + ks[None, :],
                                mask=prev_ok & (ks < H)[None, :], other=0.0)  # (BB, BK)
                    w_at = w_ptr + cols[None, :] * H + ks[:, None]  # W_hh[q*H + n, k]: (BK, BN)
                    w_ok = col_ok[None, :] & (ks < H)[:, None]
                    zi += _dot(h, tl.load(w_at, mask=w_ok, other=0.0), MM)
                    zf += _dot(h, tl.load(w_at + H * H, mask=w_ok, other=0.0), MM)
                    zg += _dot(h, tl.load(w_at + 2 * H * H, mask=w_ok, other=0.0), MM)
                    zo += _dot(h, tl.load(w_at + 3 * H * H, mask=w_ok, other=0.0), MM)
                ok = row_ok[:, None] & col_ok[None, :]
                gate = here * (4 * H) + cols[None, :]  # (BB, BN) offsets of gate i
                i = _sigmoid(zi + tl.load(xp_ptr + gate, mask=ok, other=0.0))
                f = _sigmoid(zf + tl.load(xp_ptr + gate + H, mask=ok, other=0.0))
                g = _tanh(zg + tl.load(xp_ptr + gate + 2 * H, mask=ok, other=0.0))
                o = _sigmoid(zo + tl.load(xp_ptr + gate + 3 * H, mask=ok, other=0.0))
                unit_prev = prev * H + cols[None, :]
                c_prev = tl.load(cs_ptr + unit_prev, mask=prev_ok & col_ok[None, :], other=0.0)
                h_prev = tl.load(hs_ptr + unit_prev, mask=prev_ok & col_ok[None, :], other=0.0)
                c = f * c_prev + i * g  # forget some, write some
                h = o * _tanh(c)  # expose some of the cell
                tl.store(acts_ptr + gate, i, mask=ok)
                tl.store(acts_ptr + gate + H, f, mask=ok)
                tl.store(acts_ptr + gate + 2 * H, g, mask=ok)
                tl.store(acts_ptr + gate + 3 * H, o, mask=ok)
                unit = here * H + cols[None, :]  # past its length a sequence keeps its state
                tl.store(cs_ptr + unit, tl.where(v[:, None], c, c_prev), mask=ok)
                tl.store(hs_ptr + unit, tl.where(v[:, None], h, h_prev), mask=ok)
                tl.store(out_ptr + unit, tl.where(v[:, None], h, 0.0), mask=ok)
            tl.debug_barrier()  # step t's h is read by every chunk of the next step
            s += 1

    @triton.jit
    def _gate_grads(acts_ptr, cs_ptr, dout_ptr, dgates_ptr, dh_ptr, dc_ptr, v, here, prev,
                    prev_ok, cur, nxt, rows, row_ok, B, H: tl.constexpr, BLOCK_H: tl.constexpr):
        """Step t's gate gradients (pre-activation) for every chunk; dc moves one step."""
        lanes = tl.arange(0, BLOCK_H)
        for n0 in range(0, H, BLOCK_H):
            cols = n0 + lanes
            ok = row_ok[:, None] & (cols < H)[None, :]
            gate = here * (4 * H) + cols[None, :]
            i = tl.load(acts_ptr + gate, mask=ok, other=0.0)
            f = tl.load(acts_ptr + gate + H, mask=ok, other=0.0)
            g = tl.load(acts_ptr + gate + 2 * H, mask=ok, other=0.0)
            o = tl.load(acts_ptr + gate + 3 * H, mask=ok, other=0.0)
            unit = here * H + cols[None, :]
            c = tl.load(cs_ptr + unit, mask=ok, other=0.0)
            c_prev = tl.load(cs_ptr + prev * H + cols[None, :], mask=ok & prev_ok, other=0.0)
            slot = rows.to(tl.int64)[:, None] * H + cols[None, :]
            dh = tl.load(dh_ptr + cur * B * H + slot, mask=ok, other=0.0)
            dh += tl.where(v[:, None], tl.load(dout_ptr + unit, mask=ok, other=0.0), 0.0)
            dc = tl.load(dc_ptr + cur * B * H + slot, mask=ok, other=0.0)
            tanh_c = _tanh(c)
            dc_t = dc + dh * o * (1.0 - tanh_c * tanh_c)
            keep = v[:, None]  # past its length a sequence passes its gradient straight on
            tl.store(dgates_ptr + gate, tl.where(keep, dc_t * g * i * (1.0 - i), 0.0), mask=ok)
            tl.store(dgates_ptr + gate + H,
                     tl.where(keep, dc_t * c_prev * f * (1.0 - f), 0.0), mask=ok)
            tl.store(dgates_ptr + gate + 2 * H,
                     tl.where(keep, dc_t * i * (1.0 - g * g), 0.0), mask=ok)
            tl.store(dgates_ptr + gate + 3 * H,
                     tl.where(keep, dh * tanh_c * o * (1.0 - o), 0.0), mask=ok)
            tl.store(dc_ptr + nxt * B * H + slot, tl.where(keep, dc_t * f, dc), mask=ok)

    @triton.jit
    def _scan_bwd(acts_ptr, cs_ptr, dout_ptr, w_ptr, valid_ptr, dgates_ptr, dh_ptr, dc_ptr,
                  T, B, H: tl.constexpr, REVERSE: tl.constexpr, BLOCK_B: tl.constexpr,
                  BLOCK_H: tl.constexpr, MM: tl.constexpr, ACC: tl.constexpr):
        """dgates (T, B, 4H) from the forward's acts and cs; dh, dc (2, B, H) alternate
        between steps, slot 0 holding the gradients of h_n and c_n."""
        rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)  # (BB,)
        row_ok = rows < B
        lanes = tl.arange(0, BLOCK_H)
        s = 0
        while s < T:  # a while loop: the interpreter cannot range() over a runtime T
            if REVERSE:  # undo the forward walk: its last step first
                t, tp, has_prev = s, s + 1, s < T - 1
            else:
                t, tp, has_prev = T - 1 - s, T - 2 - s, s < T - 1
            cur, nxt = s % 2, 1 - s % 2
            v = tl.load(valid_ptr + t * B + rows, mask=row_ok, other=0) != 0  # (BB,)
            here = (t * B + rows).to(tl.int64)[:, None]  # (BB, 1)
            prev = (tp * B + rows).to(tl.int64)[:, None]
            _gate_grads(acts_ptr, cs_ptr, dout_ptr, dgates_ptr, dh_ptr, dc_ptr, v, here, prev,
                        has_prev, cur, nxt, rows, row_ok, B, H, BLOCK_H)
            tl.debug_barrier()  # every chunk's gate gradients feed every chunk of dh
            for n0 in range(0, H, BLOCK_H):  # dh_prev = dgates @ W_hh: (BB, 4H) @ (4H, BN)
                cols = n0 + lanes
                ok = row_ok[:, None] & (cols < H)[None, :]
                acc = tl.zeros((BLOCK_B, BLOCK_H), dtype=ACC)
                for q in range(4):
                    for k0 in range(0, H, BLOCK_H):
                        ks = k0 + lanes
                        a = tl.load(dgates_ptr + here * (4 * H) + q * H + ks[None, :],
                                    mask=row_ok[:, None] & (ks < H)[None, :], other=0.0)
                        w = tl.load(w_ptr + (q * H + ks[:, None]) * H + cols[None, :],
                                    mask=(ks < H)[:, None] & (cols < H)[None, :], other=0.0)
                        acc += _dot(a, w, MM)  # (BB, BN)
                slot = rows.to(tl.int64)[:, None] * H + cols[None, :]
                dh = tl.load(dh_ptr + cur * B * H + slot, mask=ok, other=0.0)
                dh += tl.where(v[:, None], tl.load(dout_ptr + here * H + cols[None, :],
                                                   mask=ok, other=0.0), 0.0)
                tl.store(dh_ptr + nxt * B * H + slot, tl.where(v[:, None], acc, dh), mask=ok)
            tl.debug_barrier()  # the next step reads this step's dh and dc
            s += 1

    INTERPRETED = isinstance(_scan_fwd, InterpretedFunction)
else:
    INTERPRETED = False


def _bf16_autocast(device_type: str) -> bool:
    return (torch.is_autocast_enabled(device_type)
            and torch.get_autocast_dtype(device_type) == torch.bfloat16)


def unsupported_reason(x: Tensor, weight_hh: Tensor) -> str | None:
    """Why TritonLSTMScan cannot run on these tensors, or None when it can."""
    if triton is None:
        return "triton is not installed"
    device = x.device.type
    if device != "cuda" and not INTERPRETED:
        return (f"{device} tensors need Triton's interpreter (TRITON_INTERPRET=1 before "
                "sentiment_lstm.model.triton_scan is imported)")
    if weight_hh.dim() != 2 or weight_hh.shape[0] != 4 * weight_hh.shape[1]:
        return f"weight_hh of shape {tuple(weight_hh.shape)} is not (4H, H)"
    if x.dim() != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        return f"x of shape {tuple(x.shape)} is not a non-empty (T, B, I)"
    if torch.is_autocast_enabled(device):
        if not _bf16_autocast(device):
            return f"{torch.get_autocast_dtype(device)} autocast (the kernels take bf16 only)"
        if weight_hh.dtype != torch.float32 or x.dtype not in (torch.float32, torch.bfloat16):
            return f"bf16 autocast with {x.dtype} inputs and {weight_hh.dtype} weights"
        return None
    if x.dtype not in (torch.float32, torch.float64) or weight_hh.dtype != x.dtype:
        return f"{x.dtype} inputs with {weight_hh.dtype} weights (float32 or float64 only)"
    return None


def _launch_args(H: int, bf16: bool, dtype: torch.dtype, stages: int) -> dict:
    block_h = min(MAX_BLOCK_H, max(16, triton.next_power_of_2(H)))
    mm = (MM_BF16_EMULATED if INTERPRETED else MM_BF16) if bf16 else MM_IEEE
    wide = dtype == torch.float64
    # 8 warps and these stages compile for sm_90 with no or a few bytes of register spills
    # at H=128 and 512 (ptxas -v); fp64 tiles are twice the size, so one stage.
    return {"BLOCK_B": BLOCK_B, "BLOCK_H": block_h, "MM": mm,
            "ACC": tl.float64 if wide else tl.float32, "num_warps": 8,
            "num_stages": 1 if wide else stages}


def _device_of(x: Tensor):
    """Triton launches on the current CUDA device: make it x's."""
    return torch.cuda.device(x.device) if x.is_cuda else nullcontext()


class TritonLSTMScan(torch.autograd.Function):
    """FusedLSTMScan's contract: apply(x (T, B, I), weight_ih (4H, I), weight_hh (4H, H),
    bias_ih (4H,), bias_hh (4H,), valid (T, B) bool, reverse) -> (out (T, B, H), h_n (B, H),
    c_n (B, H)). weight_hh may be a recurrent-dropout copy of the parameter. Under bf16
    autocast it takes float32 weights, runs the GEMMs and recurrent products on bf16 operands
    and returns float32; check unsupported_reason first."""

    @staticmethod
    def forward(ctx, x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor,
                bias_hh: Tensor, valid: Tensor, reverse: bool):
        T, B, _ = x.shape
        H = weight_hh.shape[1]
        bf16 = _bf16_autocast(x.device.type)
        dtype = torch.float32 if bf16 else x.dtype  # the cell state's dtype
        # The input's share of every step's gates in one GEMM (bf16 under autocast).
        xp = F.linear(x, weight_ih, bias_ih + bias_hh).to(dtype).contiguous()  # (T, B, 4H)
        w = (weight_hh.to(torch.bfloat16) if bf16 else weight_hh).contiguous()  # (4H, H)
        valid8 = valid.to(torch.int8).contiguous()  # (T, B)
        acts = torch.empty_like(xp)  # i, f, g, o activations per step
        hs, cs, out = (xp.new_empty(T, B, H) for _ in range(3))
        args = _launch_args(H, bf16, dtype, stages=2)
        grid = (triton.cdiv(B, BLOCK_B),)
        with _device_of(x):
            _scan_fwd[grid](xp, w, valid8, acts, hs, cs, out, T, B, H, REVERSE=reverse, **args)
        ctx.save_for_backward(x, weight_ih, w, valid8, acts, hs, cs)
        ctx.reverse, ctx.bf16 = reverse, bf16
        last = 0 if reverse else T - 1
        return out, hs[last].clone(), cs[last].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out: Tensor, d_h: Tensor, d_c: Tensor):
        x, weight_ih, w, valid8, acts, hs, cs = ctx.saved_tensors
        T, B, H4 = acts.shape
        H = H4 // 4
        dh, dc = acts.new_empty(2, B, H), acts.new_empty(2, B, H)  # alternate between steps
        dh[0], dc[0] = d_h, d_c
        d_gates = torch.empty_like(acts)  # (T, B, 4H) the gradient by gate pre-activation
        args = _launch_args(H, ctx.bf16, acts.dtype, stages=1)
        grid = (triton.cdiv(B, BLOCK_B),)
        d_out = d_out.to(acts.dtype).contiguous()  # (T, B, H)
        with _device_of(acts):
            _scan_bwd[grid](acts, cs, d_out, w, valid8, d_gates, dh, dc, T, B, H,
                            REVERSE=ctx.reverse, **args)
        zero = hs.new_zeros(1, B, H)  # the state before the first step
        h_prev = torch.cat([hs[1:], zero]) if ctx.reverse else torch.cat([zero, hs[:-1]])
        d_gates = d_gates.view(T * B, H4)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=ctx.bf16):
            d_x = d_gates.mm(weight_ih).view_as(x) if ctx.needs_input_grad[0] else None
            d_w_ih = d_gates.t().mm(x.reshape(T * B, -1))
            d_w_hh = d_gates.t().mm(h_prev.view(T * B, H))
        d_b = d_gates.sum(0)
        d_x = d_x.to(x.dtype) if d_x is not None else None
        w_dtype = weight_ih.dtype
        return d_x, d_w_ih.to(w_dtype), d_w_hh.to(w_dtype), d_b, d_b, None, None
