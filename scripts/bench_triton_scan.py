"""Forward+backward time of one bidirectional LSTM layer on a CUDA GPU: TritonLSTMScan
against cuDNN's nn.LSTM and FusedLSTMScan (the eager loop), fp32 and bf16 autocast, timed
with CUDA events. Writes bench_triton_scan.json (card, versions, one row per case) to the
folder given, else $OUT, else ./gpu_results.

    python scripts/bench_triton_scan.py [out_dir]
"""

import json
import os
import sys
import time
from pathlib import Path

import torch
import triton
from torch import Tensor, nn

from sentiment_lstm.model.cells import LSTM, copy_from_nn_lstm
from sentiment_lstm.model.scan import FusedLSTMScan
from sentiment_lstm.model.triton_scan import TritonLSTMScan, unsupported_reason

SHAPES = [(128, 128, 128), (128, 128, 256), (128, 128, 512), (64, 512, 256)]  # (B, H, T)
EMBED = 128  # the input size, the default model's embed_dim
BUDGET_S = 1.5  # the most time spent timing one case (at least one timed iteration)


def scan_both(scan: type, model: LSTM, x: Tensor, valid: Tensor) -> Tensor:
    outs, states = [], []
    for direction in model.layers[0]:
        cell = direction.cell
        out, h, c = scan.apply(x, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh,
                               valid, direction.reverse)
        outs.append(out)
        states += [h, c]
    return torch.cat(outs, dim=-1), states  # (T, B, 2H)


def runner(impl: str, B: int, H: int, T: int):
    """A closure running forward+backward once, and its output for a cross-check."""
    torch.manual_seed(0)
    ref = nn.LSTM(EMBED, H, bidirectional=True).cuda()
    model = LSTM(EMBED, H, 1, bidirectional=True).cuda()
    copy_from_nn_lstm(model, ref)
    x = torch.randn(T, B, EMBED, device="cuda", requires_grad=True)
    valid = torch.ones(T, B, dtype=torch.bool, device="cuda")

    def step() -> Tensor:
        if impl.startswith("cudnn"):
            out, (h, c) = ref(x)
            states = [h, c]
        else:
            out, states = scan_both(TritonLSTMScan if impl == "triton" else FusedLSTMScan,
                                    model, x, valid)
        loss = out.float().sum() + sum(s.float().sum() for s in states)
        loss.backward()
        return out.detach()

    return step


def time_case(impl: str, precision: str, B: int, H: int, T: int) -> dict:
    row = {"impl": impl, "precision": precision, "B": B, "H": H, "T": T, "bidirectional": True}
    if impl == "fused" and precision == "bf16":
        return {**row, "skipped": "FusedLSTMScan runs without autocast only"}
    torch.backends.cudnn.allow_tf32 = impl == "cudnn_tf32"
    step = runner(impl, B, H, T)
    amp = torch.autocast("cuda", torch.bfloat16, enabled=precision == "bf16")
    try:
        with amp:
            if impl == "triton":
                probe = torch.zeros(1, 1, 1, device="cuda")
                reason = unsupported_reason(probe, torch.zeros(4 * H, H, device="cuda"))
                if reason:
                    return {**row, "skipped": reason}
            t0 = time.perf_counter()
            out = step()  # warm-up: Triton compiles, cuDNN picks its algorithms
            torch.cuda.synchronize()
            row["first_call_s"] = round(time.perf_counter() - t0, 3)
            torch.cuda.reset_peak_memory_stats()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            once_ms = start.elapsed_time(end)
            reps = max(1, min(20, int(BUDGET_S * 1000 / max(once_ms, 1e-3))))
            start.record()
            for _ in range(reps):
                step()
            end.record()
            torch.cuda.synchronize()
    except Exception as error:  # a failure is a result too: record it, go on
        return {**row, "error": f"{type(error).__name__}: {error}"[:500]}
    ms = start.elapsed_time(end) / reps
    row.update(ms_fwd_bwd=round(ms, 3), us_per_step=round(1000 * ms / T, 2), reps=reps,
               peak_mem_mib=round(torch.cuda.max_memory_allocated() / 2**20, 1))
    row["out_abs_max"] = float(out.abs().max())
    return row


def cross_check(B: int, H: int, T: int) -> float:
    """Largest |TritonLSTMScan - cuDNN| over the outputs, fp32, TF32 off."""
    torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        torch.manual_seed(0)
        ref = nn.LSTM(EMBED, H, bidirectional=True).cuda()
        model = LSTM(EMBED, H, 1, bidirectional=True).cuda()
        copy_from_nn_lstm(model, ref)
        x = torch.randn(T, B, EMBED, device="cuda")
        valid = torch.ones(T, B, dtype=torch.bool, device="cuda")
        return float((scan_both(TritonLSTMScan, model, x, valid)[0] - ref(x)[0]).abs().max())


def main() -> None:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", "gpu_results"))
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"card": torch.cuda.get_device_name(), "torch": torch.__version__,
              "triton": triton.__version__, "cuda": torch.version.cuda,
              "cudnn": torch.backends.cudnn.version(), "embed": EMBED,
              "timing": "CUDA events, forward+backward of one bidirectional layer", "rows": []}
    for B, H, T in SHAPES:
        try:
            record.setdefault("max_abs_diff_vs_cudnn_fp32", {})[f"B{B}_H{H}_T{T}"] = \
                cross_check(B, H, T)
        except Exception as error:
            record.setdefault("errors", []).append(f"cross_check {B} {H} {T}: {error}"[:500])
        for precision in ("fp32", "bf16"):
            for impl in ("cudnn", "cudnn_tf32", "triton", "fused"):
                if impl == "cudnn_tf32" and precision == "bf16":
                    continue
                row = time_case(impl, precision, B, H, T)
                print(json.dumps(row), flush=True)
                record["rows"].append(row)
                (out_dir / "bench_triton_scan.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {out_dir / 'bench_triton_scan.json'}")


if __name__ == "__main__":
    main()
