"""The vanilla LSTM scan as compiled C++ (cpp_scan.cpp) on the CPU: the time loop of each
direction runs in one parallel region, one batch slice per thread, each step a one-thread GEMM
and one fused loop of gate math. It is built with the machine's C++ compiler on first use
(about half a minute; torch.utils.cpp_extension, cached in TORCH_EXTENSIONS_DIR or
~/.cache/torch_extensions) for this CPU's instruction set; `unavailable_reason()` says why it
cannot be used, and the layer then takes the Python scan (scan.py). Parity with the autograd
loop is tested.

The build compiles a copy of the source kept in its cache folder: ninja rebuilds whenever the
compile command changes, and the command names the source's path, so two installs of the
same code (a checkout and a wheel, say) would otherwise rebuild each other's module on every
switch."""

import hashlib
import logging
import os
import platform
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from sentiment_lstm.io import first_line
from sentiment_lstm.model.scan import parameter_grads

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("cpp_scan.cpp")


def _build_tag() -> str:
    """A short tag of this CPU's model and flags, Python and torch: the build uses
    -march=native, so a cache shared by several machines (a home folder on a cluster) or by
    several environments keeps one build for each."""
    try:
        info = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        info = platform.processor()
    return hashlib.sha1(f"{info}{sys.version}{torch.__version__}".encode()).hexdigest()[:10]


def build_folder() -> Path:
    """Where this machine's build of the C++ scan lives."""
    from torch.utils import cpp_extension

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root()
    return Path(root) / f"sentiment_lstm_scan_{_build_tag()}"


def _source_in(folder: Path) -> Path:
    """The source, copied into the build folder when its bytes differ from the copy there
    (an unchanged copy keeps its time stamp, so ninja has nothing to do)."""
    copy, code = folder / SOURCE.name, SOURCE.read_bytes()
    if not copy.is_file() or copy.read_bytes() != code:
        copy.write_bytes(code)
    return copy


def _compile(folder: Path) -> ModuleType:
    """cpp_extension.load under a lock the kernel releases when its holder dies: a build
    killed mid-way (SIGKILL, the OOM killer) leaves torch's own `lock` file behind, and every
    later load would wait on it forever; under this lock no live build holds that file."""
    import fcntl

    from torch.utils import cpp_extension

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "build.flock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        left = folder / "lock"
        if left.exists():
            log.warning("removing %s, left by a build that was killed", left)
            left.unlink()
        return cpp_extension.load(
            name=folder.name, sources=[str(_source_in(folder))], build_directory=str(folder),
            extra_cflags=["-O3", "-march=native", "-fopenmp", "-fno-trapping-math",
                          "-fno-math-errno"], extra_ldflags=["-fopenmp"])


@cache
def _build() -> ModuleType | str:
    """The compiled module, or the one-line reason it could not be built."""
    try:
        log.info("loading the C++ LSTM scan (built on first use for each CPU, about 30 s)")
        module = _compile(build_folder())
        # One step on one row: a torch whose internal ops differ fails here, not mid-training.
        module.forward(torch.zeros(1, 1, 4), torch.zeros(4, 1), torch.ones(1, 1, dtype=torch.bool),
                       torch.zeros(2, 1, 1), torch.zeros(2, 1, 1), torch.zeros(1, 1, 1), False)
        return module
    except Exception as e:  # no compiler, no ninja, a failed build: the Python scan serves
        return f"the C++ scan could not be built: {first_line(e)}"


def build_error() -> str | None:
    """Why this machine cannot build the C++ scan (no compiler, say), or None."""
    built = _build()
    return built if isinstance(built, str) else None


def unavailable_reason(x: Tensor, variant: str) -> str | None:
    """Why this call cannot take the C++ scan, or None when it can."""
    if x.device.type != "cpu":
        return f"a {x.device.type} tensor"
    if x.dtype not in (torch.float32, torch.float64) or torch.is_autocast_enabled("cpu"):
        return f"{x.dtype} or autocast"
    if variant != "vanilla":
        return f"variant {variant}"
    return build_error()


class CppLSTMScan(torch.autograd.Function):
    """FusedLSTMScan's contract (x (T, B, E) -> outputs (T, B, H), h_n, c_n) with the time loop
    in C++. `valid` must be a length mask (each row valid for a prefix of time steps), as
    LSTMLayer makes it."""

    @staticmethod
    def forward(ctx, x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor,
                bias_hh: Tensor, valid: Tensor, reverse: bool):
        T, B, E = x.shape
        H = weight_hh.shape[1]
        scan = _build()
        acts = scan.times_t(x.reshape(T * B, E), weight_ih, bias_ih + bias_hh).view(T, B, -1)
        # The C++ writes every slot but the one where the scan starts.
        hs, cs, tanh_cs = x.new_empty(T + 1, B, H), x.new_empty(T + 1, B, H), x.new_empty(T, B, H)
        start = T if reverse else 0
        hs[start].zero_()
        cs[start].zero_()
        valid = valid.contiguous()
        scan.forward(acts, weight_hh.contiguous(), valid, hs, cs, tanh_cs, reverse)
        ctx.save_for_backward(x, weight_ih, weight_hh, valid, acts, hs, cs, tanh_cs)
        ctx.reverse = reverse
        if reverse:  # the state after the last step taken is the one at t = 0
            return hs[:-1], hs[0].clone(), cs[0].clone()
        last = valid.sum(0)  # the state after each row's last step: slot `length`
        rows = torch.arange(B, device=x.device)
        return hs[1:], hs[last, rows], cs[last, rows]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out: Tensor, d_h: Tensor, d_c: Tensor):
        x, weight_ih, weight_hh, valid, acts, hs, cs, tanh_cs = ctx.saved_tensors
        dh, dc = d_h.contiguous().clone(), d_c.contiguous().clone()
        scan = _build()
        scan.backward(acts, weight_hh.contiguous(), valid, cs, tanh_cs, d_out.contiguous(),
                      dh, dc, ctx.reverse)
        T, B, H4 = acts.shape
        d_x = (scan.times_t(acts.view(T * B, H4), weight_ih.t().contiguous()).view(T, B, -1)
               if ctx.needs_input_grad[0] else None)
        d_w_ih, d_w_hh, d_b = parameter_grads(acts, x, hs, ctx.reverse)
        return d_x, d_w_ih, d_w_hh, d_b, d_b, None, None

