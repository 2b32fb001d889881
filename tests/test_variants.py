import pytest
import torch

from sentiment_lstm.model.cells import LSTM, LSTMLayer, copy_from_nn_lstm
from sentiment_lstm.model.classifier import SentimentClassifier
from sentiment_lstm.model.variants import VARIANTS

NAMES = sorted(VARIANTS)
BLOCKS = {"vanilla": 4, "no_input_gate": 3, "no_forget_gate": 3, "no_output_gate": 3,
          "coupled": 3, "forget_only": 2, "linear_input": 4, "sigmoid_candidate": 4,
          "linear_output": 4}
T, B, E, H = 9, 5, 3, 4
LENGTHS = torch.tensor([9, 3, 7, 1, 5])


def reference(name, x, lengths, w_ih, w_hh, b_ih, b_hh, reverse):
    """The variant's equations, one sequence and one step at a time, with every gate written
    out; past a sequence's length the state stays and the output is zero."""
    kept = {"vanilla": "ifgo", "no_input_gate": "fgo", "no_forget_gate": "igo",
            "no_output_gate": "ifg", "coupled": "fgo", "forget_only": "fg"}.get(name, "ifgo")
    out = torch.zeros(x.shape[0], x.shape[1], H, dtype=x.dtype)
    hs, cs = [], []
    for b in range(x.shape[1]):
        h = c = torch.zeros(H, dtype=x.dtype)
        n = int(lengths[b])
        for t in (range(n - 1, -1, -1) if reverse else range(n)):
            z = w_ih @ x[t, b] + b_ih + w_hh @ h + b_hh
            pre = {k: z[j * H:(j + 1) * H] for j, k in enumerate(kept)}
            one = torch.ones(H, dtype=x.dtype)
            f = torch.sigmoid(pre["f"]) if "f" in pre else one
            i = torch.sigmoid(pre["i"]) if "i" in pre else one
            if name == "coupled":
                i = 1 - f
            o = torch.sigmoid(pre["o"]) if "o" in pre else one
            if name == "linear_input":
                g = pre["g"]
            elif name == "sigmoid_candidate":
                g = torch.sigmoid(pre["g"])
            else:
                g = torch.tanh(pre["g"])
            c = f * c + i * g
            h = o * (c if name == "linear_output" else torch.tanh(c))
            out[t, b] = h
        hs.append(h)
        cs.append(c)
    return out, torch.stack(hs), torch.stack(cs)


def run(layer, x, lengths, seed=2):
    """Outputs, final states and every gradient (input's too) under a loss touching all."""
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)  # the same recurrent-dropout mask for every path
    out, (h, c) = layer(x, lengths)
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, dtype=t.dtype, generator=g) for t in (out, h, c)]
    sum((t * w).sum() for t, w in zip((out, h, c), weights)).backward()
    return [out, h, c, x.grad, *(p.grad for p in layer.parameters())], out.grad_fn


@pytest.mark.parametrize("recurrent_dropout", [0.0, 0.5])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_fused_scan_equals_autograd_loop_in_float64(name, reverse, recurrent_dropout):
    torch.manual_seed(0)
    plain = LSTMLayer(E, H, reverse, "loop", recurrent_dropout, name).double()
    fused = LSTMLayer(E, H, reverse, "scan", recurrent_dropout, name).double()
    fused.load_state_dict(plain.state_dict())
    x = torch.randn(T, B, E, dtype=torch.float64)
    want, _ = run(plain, x, LENGTHS)
    got, grad_fn = run(fused, x, LENGTHS)
    assert type(grad_fn).__name__ == "FusedLSTMScanBackward"  # the fused path ran
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-12, rtol=0)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_both_paths_match_the_equations_and_their_gradients(name, reverse):
    torch.manual_seed(0)
    layer = LSTMLayer(E, H, reverse, "scan", 0.0, name).double()
    x = torch.randn(T, B, E, dtype=torch.float64)
    ps = [p.detach().clone().requires_grad_() for p in layer.cell.parameters()]
    xr = x.clone().requires_grad_()
    ref = reference(name, xr, LENGTHS, *ps, reverse)
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, dtype=t.dtype, generator=g) for t in ref]
    sum((t * w).sum() for t, w in zip(ref, weights)).backward()
    want = [*ref, xr.grad, *(p.grad for p in ps)]
    for kernel in ("scan", "loop"):
        layer.kernel = kernel
        layer.zero_grad()
        got, _ = run(layer, x, LENGTHS)
        for k, (a, b) in enumerate(zip(got, want)):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0, msg=f"{kernel=} item {k}")


@pytest.mark.parametrize("name", NAMES)
def test_padding_changes_nothing(name):
    torch.manual_seed(0)
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True, variant=name).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    lengths = torch.tensor([5, 2])
    for kernel in ("scan", "loop"):
        for layer in lstm.layers:
            for direction in layer:
                direction.kernel = kernel
        out, (h, c) = lstm(x, lengths)
        padded = torch.cat([x, torch.randn(4, 2, 3, dtype=torch.float64)])  # junk after the end
        out_p, (h_p, c_p) = lstm(padded, lengths)
        torch.testing.assert_close(out_p[:5], out, atol=1e-14, rtol=0)
        assert out_p[5:].abs().max() == 0 and out[2:, 1].abs().max() == 0
        torch.testing.assert_close(h_p, h, atol=1e-14, rtol=0)
        torch.testing.assert_close(c_p, c, atol=1e-14, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_only_the_gates_a_variant_uses(name):
    n = BLOCKS[name]
    cell = LSTMLayer(E, H, variant=name).cell
    assert [(k, tuple(p.shape)) for k, p in cell.named_parameters()] == [
        ("weight_ih", (n * H, E)), ("weight_hh", (n * H, H)), ("bias_ih", (n * H,)),
        ("bias_hh", (n * H,))]
    model = SentimentClassifier(vocab_size=10, embed_dim=E, hidden_size=H, encoder="lstm",
                                bidirectional=True, variant=name, pooling="max")
    recurrent = 2 * n * H * (E + H + 2)  # two directions
    assert sum(p.numel() for p in model.parameters()) == 10 * E + recurrent + (2 * H * 2 + 2)


def test_vanilla_keeps_nn_lstm_names_and_other_variants_refuse_its_weights():
    ref = torch.nn.LSTM(E, H)
    copy_from_nn_lstm(LSTM(E, H), ref)  # vanilla: works
    with pytest.raises(ValueError, match="no_forget_gate variant has no nn.LSTM"):
        copy_from_nn_lstm(LSTM(E, H, variant="no_forget_gate"), ref)
    with pytest.raises(ValueError, match="unknown LSTM variant 'peephole'"):
        LSTM(E, H, variant="peephole")
    with pytest.raises(ValueError, match="custom LSTM only"):
        SentimentClassifier(vocab_size=10, encoder="rnn", variant="coupled")


def test_vanilla_default_is_bit_identical_to_no_variant_argument():
    torch.manual_seed(0)
    a = SentimentClassifier(vocab_size=50, embed_dim=6, hidden_size=5, bidirectional=True)
    torch.manual_seed(0)
    b = SentimentClassifier(vocab_size=50, embed_dim=6, hidden_size=5, bidirectional=True,
                            variant="vanilla")
    tokens, lengths = torch.randint(1, 50, (3, 7)), torch.tensor([7, 4, 2])
    assert torch.equal(a(tokens, lengths), b(tokens, lengths))
