"""TritonLSTMScan against the autograd loop (LSTM / LSTMLayer with kernel="loop") and nn.LSTM.

Without CUDA the kernels run in Triton's interpreter on CPU tensors; with CUDA the same tests
run the compiled kernels on the GPU, plus larger shapes.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sentiment_lstm.model.cells import LSTM, LSTMLayer
from sentiment_lstm.model.scan import FusedLSTMScan

if sys.platform != "linux" and importlib.util.find_spec("triton") is None:
    pytest.skip("Triton ships wheels for Linux only", allow_module_level=True)

# Triton reads TRITON_INTERPRET as its jit functions (its library's own among them) are
# decorated, on import, and again while the interpreter runs: without CUDA it is switched on
# before anything imports triton and stays on (compiled kernels cannot run there anyway).
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
LATE = DEVICE == "cpu" and "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1"
if DEVICE == "cpu" and not LATE:
    os.environ["TRITON_INTERPRET"] = "1"
from sentiment_lstm.model import triton_scan  # noqa: E402
from sentiment_lstm.model.triton_scan import TritonLSTMScan  # noqa: E402

runs_here = pytest.mark.skipif(LATE, reason="triton came in first: run by test_fresh_process")
cuda = pytest.mark.skipif(DEVICE != "cuda", reason="no CUDA device")
TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.mark.skipif(not LATE, reason="the interpreter is on in this process")
def test_fresh_process():
    """Something imported triton before this module: run it where the interpreter can be on."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          __file__], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def scan_lstm(scan: type, model: LSTM, x: Tensor, lengths: Tensor, weight_hh: Tensor | None = None):
    """model's forward (no dropout between layers) with every direction run by scan.apply."""
    valid = torch.arange(x.shape[0], device=x.device)[:, None] < lengths[None, :]  # (T, B)
    hs, cs = [], []
    for layer in model.layers:
        outs = []
        for direction in layer:
            cell = direction.cell
            w_hh = cell.weight_hh if weight_hh is None else weight_hh
            out, h, c = scan.apply(x, cell.weight_ih, w_hh, cell.bias_ih, cell.bias_hh, valid,
                                   direction.reverse)
            outs.append(out)
            hs.append(h)
            cs.append(c)
        x = torch.cat(outs, dim=-1)  # (T, B, D*H)
    return x, (torch.stack(hs), torch.stack(cs))


def results(out: Tensor, state: tuple[Tensor, Tensor], wrt: list[Tensor]) -> list[Tensor]:
    """Outputs, final states and the gradients of a fixed random loss of all three."""
    h, c = state
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=g, dtype=torch.float64).to(t) for t in (out, h, c)]
    loss = sum((t * w).sum() for t, w in zip((out, h, c), weights))
    return [out, h, c, *torch.autograd.grad(loss, wrt)]


def nn_lstm_results(model: LSTM, x: Tensor, lengths: Tensor) -> list[Tensor]:
    """results() of nn.LSTM on a packed copy of x, with model's weights copied in."""
    ref = nn.LSTM(x.shape[-1], model.hidden_size, model.num_layers,
                  bidirectional=model.bidirectional).to(x)
    params = []  # nn.LSTM's parameters in the order of model.parameters()
    for k, layer in enumerate(model.layers):
        for direction in layer:
            suffix = f"l{k}" + ("_reverse" if direction.reverse else "")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                params.append(getattr(ref, f"{name}_{suffix}"))
                params[-1].data.copy_(getattr(direction.cell, name))
    out, state = ref(pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False))
    out = pad_packed_sequence(out, total_length=x.shape[0])[0]  # (T, B, D*H)
    return results(out, state, [x, *params])


def assert_all_close(got: list[Tensor], want: list[Tensor], atol: float) -> None:
    names = ["out", "h_n", "c_n", "d_x"] + [f"d_param{k}" for k in range(len(got) - 4)]
    for name, a, b in zip(names, got, want):
        torch.testing.assert_close(a, b, atol=atol, rtol=atol, msg=lambda m, n=name: f"{n}: {m}")


def make_case(T: int, B: int, E: int, H: int, layers: int, bidir: bool, dtype: torch.dtype,
              lengths: list[int]):
    torch.manual_seed(0)
    model = LSTM(E, H, layers, bidir, kernel="loop").to(DEVICE, dtype)
    x = torch.randn(T, B, E, device=DEVICE, dtype=dtype, requires_grad=True)
    return model, x, torch.tensor(lengths, device=DEVICE)


@runs_here
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layers, bidir", [(1, False), (1, True), (2, True)])
def test_matches_autograd_loop_and_nn_lstm(dtype, layers, bidir, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # cuDNN's LSTM: true fp32
    model, x, lengths = make_case(7, 5, 8, 20, layers, bidir, dtype, [7, 3, 5, 1, 6])
    wrt = [x, *model.parameters()]
    want = results(*model(x, lengths), wrt)
    got = results(*scan_lstm(TritonLSTMScan, model, x, lengths), wrt)
    assert_all_close(got, want, TOL[dtype])
    assert_all_close(got, nn_lstm_results(model, x, lengths), 10 * TOL[dtype])
    assert got[0][3:, 1].abs().max() == 0  # outputs past a length are zero


@runs_here
def test_several_batch_tiles_and_hidden_chunks():
    """B=17 spans two programs; H=72 spans two chunks of 64 units, the second one padded."""
    model, x, lengths = make_case(4, 17, 8, 72, 1, True, torch.float64, [4, 2] * 8 + [3])
    wrt = [x, *model.parameters()]
    want = results(*model(x, lengths), wrt)
    got = results(*scan_lstm(TritonLSTMScan, model, x, lengths), wrt)
    assert_all_close(got, want, TOL[torch.float64])


@runs_here
@pytest.mark.parametrize("reverse", [False, True])
def test_recurrent_dropout_copy(reverse):
    torch.manual_seed(0)
    layer = LSTMLayer(8, 16, reverse, kernel="loop", recurrent_dropout=0.4).to(DEVICE).train()
    x = torch.randn(6, 4, 8, device=DEVICE, requires_grad=True)
    lengths = torch.tensor([6, 2, 4, 5], device=DEVICE)
    wrt = [x, *layer.parameters()]
    torch.manual_seed(3)
    out, state = layer(x, lengths)
    want = results(out, state, wrt)
    torch.manual_seed(3)  # the same mask: LSTMLayer draws it first thing in forward
    w_hh = F.dropout(layer.cell.weight_hh, 0.4)
    assert (w_hh == 0).any()
    cell, valid = layer.cell, torch.arange(6, device=DEVICE)[:, None] < lengths[None, :]
    out, h, c = TritonLSTMScan.apply(x, cell.weight_ih, w_hh, cell.bias_ih, cell.bias_hh, valid,
                                     reverse)
    assert_all_close(results(out, (h, c), wrt), want, TOL[torch.float32])


@runs_here
def test_bf16_autocast():
    """Under bf16 autocast the GEMMs round to bf16; the results stay float32 and close."""
    model, x, lengths = make_case(5, 6, 8, 20, 1, True, torch.float32, [5, 2, 4, 1, 3, 5])
    wrt = [x, *model.parameters()]
    want = results(*scan_lstm(FusedLSTMScan, model, x, lengths), wrt)
    with torch.autocast(DEVICE, torch.bfloat16):
        assert triton_scan.unsupported_reason(x, model.layers[0][0].cell.weight_hh) is None
        out, state = scan_lstm(TritonLSTMScan, model, x, lengths)
    got = results(out, state, wrt)
    assert all(t.dtype == torch.float32 for t in got)
    for a, b in zip(got, want):  # 5% of each tensor's largest entry, as test_cells' bf16
        torch.testing.assert_close(a, b, atol=5e-2 * b.abs().max().item(), rtol=0)


@runs_here
def test_unsupported_reasons():
    x, w = torch.zeros(3, 2, 8, device=DEVICE), torch.zeros(64, 16, device=DEVICE)
    reason = triton_scan.unsupported_reason
    assert reason(x, w) is None
    assert "float16" in reason(x.half(), w.half())
    assert "float64 weights" in reason(x, w.double())
    assert "(4H, H)" in reason(x, torch.zeros(60, 16, device=DEVICE))
    assert "non-empty" in reason(x[:0], w)
    with torch.autocast(DEVICE, torch.float16):
        assert "bf16 only" in reason(x, w)
    if DEVICE == "cuda" and not triton_scan.INTERPRETED:
        assert "TRITON_INTERPRET" in reason(x.cpu(), w.cpu())


@cuda
@pytest.mark.parametrize("dtype, H", [(torch.float32, 128), (torch.float32, 200),
                                      (torch.float64, 72)])
def test_cuda_larger_shapes(dtype, H):
    model, x, lengths = make_case(9, 37, 8, H, 2, True, dtype, list(range(9, 0, -1)) * 4 + [9])
    wrt = [x, *model.parameters()]
    want = results(*scan_lstm(FusedLSTMScan, model, x, lengths), wrt)
    got = results(*scan_lstm(TritonLSTMScan, model, x, lengths), wrt)
    assert_all_close(got, want, 10 * TOL[dtype])


def test_kernels_compile_for_sm90(tmp_path):
    """The interpreter skips Triton's compiler: compile for a Hopper GPU (ptxas included) in a
    process without TRITON_INTERPRET, as TritonLSTMScan would launch them."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # compile every time, leave no cache behind
    helper = os.path.join(os.path.dirname(__file__), "triton_compile.py")
    run = subprocess.run([sys.executable, helper], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    kernels = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(kernels) == 6
    assert all(k["shared"] <= 227 * 1024 for k in kernels)  # sm_90's most per block
