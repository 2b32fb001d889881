import pytest
import torch
import torch.nn.functional as F

from sentiment_lstm.model.classifier import SentimentClassifier, as_torch_lstm, reverse_padded
from sentiment_lstm.training.schedule import adversarial_noise


def test_reverse_padded_reverses_within_length_and_is_its_own_inverse():
    x = torch.arange(4).view(4, 1).repeat(1, 2)  # (T=4, B=2): 0 1 2 3 per column
    lengths = torch.tensor([4, 2])
    got = reverse_padded(x, lengths)
    assert got[:, 0].tolist() == [3, 2, 1, 0]
    assert got[:, 1].tolist() == [1, 0, 2, 3]
    assert torch.equal(reverse_padded(got, lengths), x)


@pytest.mark.parametrize("encoder", ["lstm", "rnn", "torch_lstm"])
@pytest.mark.parametrize("pooling", ["last", "max", "mean", "max_mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_logits(encoder, pooling, bidirectional):
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=20, embed_dim=6, hidden_size=5, num_layers=2,
                                encoder=encoder, bidirectional=bidirectional, pooling=pooling)
    model.eval()
    tokens = torch.tensor([[3, 4, 5, 6, 7, 8], [9, 10, 11, 0, 0, 0]])
    lengths = torch.tensor([6, 3])
    batch = model(tokens, lengths)
    alone = model(tokens[1:, :3], lengths[1:])  # the short review with no padding at all
    torch.testing.assert_close(batch[1:], alone, atol=1e-6, rtol=0)
    more_pad = model(torch.cat([tokens, torch.zeros(2, 4, dtype=torch.long)], 1), lengths)
    torch.testing.assert_close(more_pad, batch, atol=1e-6, rtol=0)


def test_max_mean_pooling_is_max_and_mean_side_by_side():
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=20, embed_dim=6, hidden_size=5, pooling="max_mean")
    model.eval()
    tokens, lengths = torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2])
    out, _ = model.encoder(model.embed(tokens.t()), lengths)  # (T, B, 5)
    feats = torch.cat([out[:2, 1].amax(0), out[:2, 1].mean(0)])  # review 1 has 2 tokens
    expected = model.head(feats)
    torch.testing.assert_close(model(tokens, lengths)[1], expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("encoder", ["lstm", "rnn", "torch_lstm"])
def test_orthogonal_init_makes_every_recurrent_gate_block_orthogonal(encoder):
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=20, embed_dim=6, hidden_size=5, num_layers=2,
                                bidirectional=True, encoder=encoder, init="orthogonal")
    blocks = [b for name, p in model.named_parameters() if "weight_hh" in name
              for b in p.detach().split(5)]
    assert len(blocks) == 4 * (4 if encoder != "rnn" else 1)  # 2 layers x 2 directions
    for b in blocks:
        torch.testing.assert_close(b @ b.t(), torch.eye(5), atol=1e-5, rtol=0)


def test_custom_lstm_and_torch_lstm_agree_with_copied_weights():
    torch.manual_seed(0)
    kw = dict(vocab_size=20, embed_dim=6, hidden_size=5, bidirectional=True, pooling="max")
    custom = SentimentClassifier(encoder="lstm", **kw)
    ref = SentimentClassifier(encoder="torch_lstm", **kw)
    with torch.no_grad():
        ref.embed.weight.copy_(custom.embed.weight)
        ref.head.load_state_dict(custom.head.state_dict())
        for direction, module in zip(custom.encoder.lstm.layers[0], ref.encoder.layers[0]):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, f"{name}_l0").copy_(getattr(direction.cell, name))
    tokens = torch.randint(1, 20, (3, 7))
    lengths = torch.tensor([7, 2, 5])
    torch.testing.assert_close(custom(tokens, lengths), ref(tokens, lengths), atol=1e-5, rtol=0)


@pytest.mark.parametrize("encoder", ["lstm", "rnn", "torch_lstm"])
def test_every_encoder_trains_under_cpu_bf16_autocast(encoder):
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=20, embed_dim=6, hidden_size=5, encoder=encoder)
    model.eval()  # no dropout: the two passes must see the same network
    tokens, lengths = torch.randint(1, 20, (3, 7)), torch.tensor([7, 2, 5])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(tokens, lengths)
    with torch.no_grad():
        full = model(tokens, lengths)
    logits.float().sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    torch.testing.assert_close(logits.float(), full, atol=5e-2, rtol=0)


def test_unknown_encoder_is_refused():
    with pytest.raises(ValueError, match="unknown encoder"):
        SentimentClassifier(vocab_size=5, encoder="gru")


@pytest.mark.parametrize("encoder", ["lstm", "rnn", "torch_lstm"])
def test_adversarial_noise_has_norm_eps_per_review_and_raises_the_loss(encoder):
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=50, embed_dim=8, hidden_size=6, encoder=encoder,
                                bidirectional=True, pooling="max").eval()
    tokens, lengths = torch.randint(1, 50, (4, 9)), torch.tensor([9, 5, 3, 7])
    tokens[torch.arange(9)[None, :] >= lengths[:, None]] = 0
    labels = torch.tensor([0, 1, 1, 0])
    noise = torch.zeros(9, 4, 8, requires_grad=True)
    clean = F.cross_entropy(model(tokens, lengths, noise), labels, reduction="none")
    clean.sum().backward()
    r = adversarial_noise(noise.grad, 0.5)
    assert torch.allclose(r.pow(2).sum(dim=(0, 2)).sqrt(), torch.full((4,), 0.5))
    assert r[torch.arange(9)[:, None] >= lengths[None, :]].abs().max() == 0  # not on padding
    with torch.no_grad():
        moved = F.cross_entropy(model(tokens, lengths, r), labels, reduction="none")
        other = adversarial_noise(torch.randn_like(r), 0.5)  # a random direction, same norm
        random = F.cross_entropy(model(tokens, lengths, other), labels, reduction="none")
    assert (moved > clean).all() and (moved - clean).abs().min() > (random - clean).abs().max()
    assert torch.equal(adversarial_noise(torch.zeros(9, 4, 8), 0.5), torch.zeros(9, 4, 8))


def test_word_dropout_drops_whole_tokens_in_training_only():
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=50, embed_dim=8, hidden_size=6, word_dropout=0.5,
                                bidirectional=True, pooling="max")
    seen = []
    model.encoder.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0]))
    tokens, lengths = torch.randint(1, 50, (16, 40)), torch.full((16,), 40)
    model(tokens, lengths)
    model.eval()
    model(tokens, lengths)
    trained, evaluated = seen
    assert torch.equal(evaluated, model.embed(tokens.t()))  # no dropout outside training
    zero = (trained == 0).all(-1)  # (T, B): tokens whose whole vector was dropped
    assert 0.4 < zero.float().mean() < 0.6
    torch.testing.assert_close(trained[~zero], 2 * evaluated[~zero])  # the rest kept, scaled


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "max_mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_as_torch_lstm_gives_the_custom_lstms_outputs_on_mixed_lengths(pooling, bidirectional):
    torch.manual_seed(0)
    args = {"vocab_size": 30, "embed_dim": 6, "hidden_size": 5, "num_layers": 2,
            "encoder": "lstm", "bidirectional": bidirectional, "pooling": pooling}
    model = SentimentClassifier(**args).eval()
    twin = as_torch_lstm(model, args)
    assert isinstance(twin.encoder.layers[0][0], torch.nn.LSTM)
    tokens = torch.randint(2, 30, (4, 7))
    lengths = torch.tensor([7, 1, 4, 2])
    tokens[torch.arange(7)[None, :] >= lengths[:, None]] = 0
    with torch.no_grad():
        torch.testing.assert_close(twin(tokens, lengths), model(tokens, lengths), atol=1e-6,
                                   rtol=0)
    rnn_args = {**args, "encoder": "rnn"}
    rnn = SentimentClassifier(**rnn_args)
    assert as_torch_lstm(rnn, rnn_args) is rnn  # nn.RNN exports as it is
