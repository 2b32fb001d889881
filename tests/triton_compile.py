"""Compiles the Triton LSTM kernels for a CUDA target (sm_90) on a machine without a GPU:
Triton's front end, its passes and ptxas all run; only the launch is missing. Prints one
JSON line per kernel with its shared memory. Run in a process without TRITON_INTERPRET."""

import json
import sys

import torch
import triton
from triton.backends.compiler import GPUTarget

from sentiment_lstm.model import triton_scan as ts

CASES = [  # (H, reverse, bf16, dtype): padding, several chunks, bf16 operands, fp64
    (20, False, False, torch.float32),
    (128, True, True, torch.float32),
    (72, False, False, torch.float64),
]


def compile_kernel(kernel, H: int, reverse: bool, bf16: bool, dtype: torch.dtype,
                   stages: int, arch: int = 90) -> dict:
    args = ts._launch_args(H, bf16, dtype, stages)  # what TritonLSTMScan launches with
    options = {k: args.pop(k) for k in ("num_warps", "num_stages")}
    value = "*fp64" if dtype == torch.float64 else "*fp32"
    signature = {}
    for name in kernel.arg_names:
        if name == "valid_ptr":
            signature[name] = "*i8"
        elif name == "w_ptr":
            signature[name] = "*bf16" if bf16 else value
        elif name.endswith("_ptr"):
            signature[name] = value
        else:
            signature[name] = "i32" if name in ("T", "B") else "constexpr"
    source = triton.compiler.ASTSource(kernel, signature, constexprs={"H": H, "REVERSE": reverse,
                                                                      **args})
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options)
    return {"kernel": kernel.__name__, "H": H, "bf16": bf16, "dtype": str(dtype),
            "shared": compiled.metadata.shared}


if __name__ == "__main__":
    assert not ts.INTERPRETED, "unset TRITON_INTERPRET"
    for H, reverse, bf16, dtype in CASES:
        for kernel, stages in ((ts._scan_fwd, 2), (ts._scan_bwd, 1)):
            print(json.dumps(compile_kernel(kernel, H, reverse, bf16, dtype, stages)))
    sys.exit(0)
