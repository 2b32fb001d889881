import functools
import os
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sentiment_lstm.model import cells, cpp_scan
from sentiment_lstm.model.cells import LSTM, LSTMCell, LSTMLayer, copy_from_nn_lstm

# The parity tests also run on a GPU where there is one (cuDNN's nn.LSTM as the reference).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]


def test_cell_matches_nn_lstmcell():
    torch.manual_seed(0)
    ref, cell = nn.LSTMCell(5, 7), LSTMCell(5, 7)
    assert [(n, p.shape) for n, p in cell.named_parameters()] == [
        (n, p.shape) for n, p in ref.named_parameters()]
    cell.load_state_dict(ref.state_dict())
    x, h, c = torch.randn(3, 5), torch.randn(3, 7), torch.randn(3, 7)
    h_ref, c_ref = ref(x, (h, c))
    h_new, c_new = cell(x, (h, c))
    torch.testing.assert_close(h_new, h_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(c_new, c_ref, atol=1e-6, rtol=0)


# bf16 autocast (trainer.precision=bf16) keeps the cell state in float32 but rounds the gate
# GEMMs to 8 mantissa bits: outputs and states agree within 1e-2, gradients within 5% of the
# largest entry of each gradient tensor.
TOLERANCE = {"fp32": (1e-5, 1e-5), "bf16": (1e-2, 5e-2)}  # (values, gradients)


def assert_close_grad(got, want, tol, precision, msg=""):
    atol = tol * want.abs().max().item() if precision == "bf16" else tol
    torch.testing.assert_close(got, want, atol=atol, rtol=0, msg=msg)


# kernel scan: FusedLSTMScan's hand-written backward; cpp: CppLSTMScan (on a GPU it falls
# back to the scan); under bf16 autocast the loop runs
@pytest.mark.parametrize("precision, kernel", [("fp32", "cpp"), ("fp32", "scan"),
                                               ("fp32", "loop"), ("bf16", "scan")])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_lstm_matches_nn_lstm_on_mixed_lengths(num_layers, bidirectional, precision, kernel,
                                               device, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # cuDNN's LSTM: true fp32
    torch.manual_seed(0)
    T, B, E, H = 9, 5, 4, 6
    value_tol, grad_tol = TOLERANCE[precision]
    ref = nn.LSTM(E, H, num_layers, bidirectional=bidirectional).to(device)
    custom = LSTM(E, H, num_layers, bidirectional=bidirectional, kernel=kernel).to(device)
    copy_from_nn_lstm(custom, ref)
    lengths = torch.tensor([9, 3, 7, 1, 5])
    x = torch.randn(T, B, E, device=device)
    x_ref, x_new = x.clone().requires_grad_(), x.clone().requires_grad_()

    packed, (h_ref, c_ref) = ref(pack_padded_sequence(x_ref, lengths, enforce_sorted=False))
    out_ref, _ = pad_packed_sequence(packed, total_length=T)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
        out_new, (h_new, c_new) = custom(x_new, lengths.to(device))
    for got, want in ((out_new, out_ref), (h_new, h_ref), (c_new, c_ref)):
        assert got.dtype == torch.float32  # the state stays float32 under autocast
        torch.testing.assert_close(got, want, atol=value_tol, rtol=0)

    w = torch.randn_like(out_ref)  # a loss that touches every output and final state
    ((out_ref * w).sum() + h_ref.sum() + c_ref.pow(2).sum()).backward()
    ((out_new * w).sum() + h_new.sum() + c_new.pow(2).sum()).backward()
    assert_close_grad(x_new.grad, x_ref.grad, grad_tol, precision)
    for k, layer in enumerate(custom.layers):
        for direction in layer:
            suffix = f"l{k}" + ("_reverse" if direction.reverse else "")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                assert_close_grad(getattr(direction.cell, name).grad,
                                  getattr(ref, f"{name}_{suffix}").grad, grad_tol, precision,
                                  msg=f"{name}_{suffix}")


SCANS = [("scan", "cpu", 2), ("cpp", "cpu", 1), ("cpp", "cpu", 2),  # (kernel, device, threads)
         pytest.param("scan", "cuda", 2, marks=DEVICES[1].marks)]


@pytest.mark.parametrize("input_grad, recurrent_dropout", [(True, 0.0), (False, 0.0),
                                                            (True, 0.5)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kernel, device, threads", SCANS)
def test_fused_scan_equals_autograd_loop_in_float64(reverse, input_grad, recurrent_dropout,
                                                    kernel, device, threads, request):
    request.addfinalizer(functools.partial(torch.set_num_threads, torch.get_num_threads()))
    torch.set_num_threads(threads)  # cpp: one batch slice per thread, here 6 or 3 + 3 rows
    torch.manual_seed(0)
    T, B, E, H = 11, 6, 3, 5
    plain = LSTMLayer(E, H, reverse, "loop", recurrent_dropout).double().to(device)
    fused = LSTMLayer(E, H, reverse, kernel, recurrent_dropout).double().to(device)
    fused.load_state_dict(plain.state_dict())
    x = torch.randn(T, B, E, dtype=torch.float64, device=device)
    lengths = torch.tensor([11, 3, 7, 1, 11, 5], device=device)
    results = []
    for layer in (plain, fused):
        xi = x.clone().requires_grad_(input_grad)
        torch.manual_seed(2)  # the same recurrent-dropout mask for both paths
        out, (h, c) = layer(xi, lengths)
        weights = [torch.randn(t.shape, dtype=t.dtype, generator=torch.Generator().manual_seed(1))
                   .to(device) for t in (out, h, c)]
        sum((t * w).sum() for t, w in zip((out, h, c), weights)).backward()
        results.append([out, h, c, xi.grad, *(p.grad for p in layer.parameters())])
    name = "CppLSTMScanBackward" if kernel == "cpp" else "FusedLSTMScanBackward"
    assert type(out.grad_fn).__name__ == name  # the fused path ran
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kernel", ["cpp", "scan", "loop"])
def test_recurrent_dropout_drops_weights_in_training_only(kernel):
    torch.manual_seed(0)
    layer = LSTMLayer(3, 4, kernel=kernel, recurrent_dropout=0.5)
    plain = LSTMLayer(3, 4, kernel=kernel)
    plain.load_state_dict(layer.state_dict())
    x, lengths = torch.randn(6, 2, 3), torch.tensor([6, 4])
    out, _ = layer(x, lengths)
    out.sum().backward()
    grad = layer.cell.weight_hh.grad
    dropped = grad == 0  # a dropped weight never reaches the loss
    assert 0.3 < dropped.float().mean() < 0.7
    assert (plain(x, lengths)[0] - out).abs().max() > 1e-3  # the mask changed the output
    layer.eval()
    torch.testing.assert_close(layer(x, lengths)[0], plain(x, lengths)[0])


@pytest.mark.parametrize("kernel", ["cpp", "scan", "loop"])
def test_padding_does_not_change_outputs_or_states(kernel):
    torch.manual_seed(0)
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True, kernel=kernel)
    x = torch.randn(5, 1, 3)
    out, (h, c) = lstm(x, torch.tensor([5]))
    padded = torch.cat([x, torch.randn(4, 1, 3)])  # junk after the end must be ignored
    out_p, (h_p, c_p) = lstm(padded, torch.tensor([5]))
    torch.testing.assert_close(out_p[:5], out)
    assert out_p[5:].abs().max() == 0
    torch.testing.assert_close(h_p, h)
    torch.testing.assert_close(c_p, c)


def test_kernel_switch_picks_a_path_and_falls_back_with_one_warning(caplog):
    x = torch.randn(4, 2, 3)
    assert LSTMLayer(3, 4).path(x) == "cpp"  # auto on a CPU tensor: never triton
    assert LSTMLayer(3, 4, kernel="loop").path(x) == "loop"
    assert LSTMLayer(3, 4, variant="no_forget_gate").path(x) == "scan"  # auto: no warning
    assert LSTMLayer(3, 4).double().path(x.double()) == "cpp"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert LSTMLayer(3, 4, kernel="scan").path(x) == "loop"
    coupled = LSTMLayer(3, 4, kernel="triton", variant="coupled")
    linear = LSTMLayer(3, 4, kernel="cpp", variant="linear_input")
    cells._log_once.cache_clear()  # each warning once per process, whichever test came first
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert [coupled.path(x), coupled.path(x), linear.path(x)] == ["scan"] * 3
    assert [r.getMessage() for r in caplog.records] == [
        "model.kernel=triton falls back to the scan: variant coupled",
        "model.kernel=cpp falls back to the scan: variant linear_input"]
    with pytest.raises(ValueError, match="unknown kernel 'cuda'"):
        LSTMLayer(3, 4, kernel="cuda")


def test_cpp_scan_saturates_like_torch_and_keeps_nan():
    """The C++ gate math has its own exp: far into the tails it must still give torch's 0, 1
    and -1, and a NaN pre-activation (a diverged run) must come out NaN, not a number."""
    layer = LSTMLayer(1, 3, kernel="cpp")
    loop = LSTMLayer(1, 3, kernel="loop")
    with torch.no_grad():
        layer.cell.weight_ih.copy_(torch.tensor([1.0, -1.0, 3.0] * 4)[:, None])
        layer.cell.weight_hh.zero_()
    loop.load_state_dict(layer.state_dict())
    x = torch.tensor([0.0, 1e-6, -30.0, 30.0, 95.0, -95.0, 1e30, -1e30]).view(-1, 1, 1)
    lengths = torch.tensor([x.shape[0]])
    torch.testing.assert_close(layer(x, lengths)[0], loop(x, lengths)[0], atol=1e-6, rtol=0)
    out, (h, c) = layer(torch.tensor([[[1.0]], [[float("nan")]]]), torch.tensor([2]))
    assert not out[0].isnan().any() and out[1].isnan().all() and h.isnan().all()


def test_cpp_scan_falls_back_to_the_scan_where_it_cannot_be_built(tmp_path, monkeypatch):
    """A machine without a working compiler: one warning, and the Python scan trains. The
    build folder holds the lock file of a build killed before: it is removed, not waited on."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    folder = cpp_scan.build_folder()
    folder.mkdir()
    (folder / "lock").touch()
    code = ("import logging, torch; logging.basicConfig(level=logging.WARNING)\n"
            "from sentiment_lstm.model.cells import LSTM\n"
            "out, _ = LSTM(3, 4)(torch.randn(5, 2, 3), torch.tensor([5, 2]))\n"
            "print(type(out.grad_fn).__name__)\n")
    env = os.environ | {"CXX": "/bin/false"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["FusedLSTMScanBackward"]
    assert "lock, left by a build that was killed" in run.stderr
    warnings = [line for line in run.stderr.splitlines() if "falls back" in line]
    assert len(warnings) == 1 and "the C++ scan could not be built" in warnings[0], run.stderr
