"""The mechanism diagnostics: shapes, finiteness, every position covered, and no side effects."""

import subprocess
import sys

import pytest
import torch
from helpers import make_tarball
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from sentiment_lstm.checkpoint import load_bundle
from sentiment_lstm.data.tokenizer import EncodedSplit
from sentiment_lstm.evaluation.diagnostics import probe, probe_batch, traced
from sentiment_lstm.model.classifier import SentimentClassifier

T, B, H = 12, 4, 5


def model_and_batch(encoder: str, **kw) -> tuple[SentimentClassifier, tuple]:
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=30, embed_dim=6, hidden_size=H, encoder=encoder,
                                dropout=0.3, embed_dropout=0.3, **kw)
    tokens = torch.randint(1, 30, (B, T))
    return model, (tokens, torch.full((B,), T), torch.tensor([0, 1, 1, 0]))


def test_lstm_probe_reports_every_layer_direction_and_position():
    model, batch = model_and_batch("lstm", num_layers=2, bidirectional=True)
    report = probe(model, *batch)
    assert set(report) == {"l0", "l0_reverse", "l1", "l1_reverse"}
    for row in report.values():
        assert row["grad_h"].shape == row["forget"].shape == row["cell_norm"].shape == (T,)
        assert torch.isfinite(row["grad_h"]).all() and (row["grad_h"] > 0).all()
        assert ((row["forget"] > 0) & (row["forget"] < 1)).all()
        for gate in ("input", "forget_all", "output"):
            assert row[gate].shape == (T, B, H)
        torch.testing.assert_close(row["forget"], row["forget_all"].mean((1, 2)))


@pytest.mark.parametrize("variant", ["forget_only", "coupled", "no_forget_gate"])
def test_variant_probe_records_constant_gates_as_ones(variant):
    model, batch = model_and_batch("lstm", bidirectional=True, variant=variant)
    report = probe(model, *batch)
    for row in report.values():
        assert torch.isfinite(row["grad_h"]).all() and (row["grad_h"] > 0).all()
        for gate, constant in (("input", variant == "forget_only"),
                               ("forget_all", variant == "no_forget_gate"),
                               ("output", variant == "forget_only")):
            assert row[gate].shape == (T, B, H)
            assert bool((row[gate] == 1).all()) == constant, gate
        if variant == "coupled":  # i = 1 - f, recorded as the input gate
            torch.testing.assert_close(row["input"], 1 - row["forget_all"])


def test_rnn_probe_has_gradients_per_position_and_no_gates():
    model, batch = model_and_batch("rnn", bidirectional=True)
    report = probe(model, *batch)
    assert set(report) == {"l0", "l0_reverse"}
    for row in report.values():
        assert set(row) == {"grad_h"} and row["grad_h"].shape == (T,)
        assert torch.isfinite(row["grad_h"]).all() and (row["grad_h"] > 0).all()


@pytest.mark.parametrize("encoder", ["lstm", "rnn"])
def test_tracing_changes_no_result_and_probing_leaves_no_trace(encoder):
    model, (tokens, lengths, labels) = model_and_batch(encoder, bidirectional=True)
    model.eval()
    plain = model(tokens, lengths)
    with traced(model) as records:
        # the trace takes the autograd loop (unrolled nn.RNN): the same math as the C++ scan,
        # rounded in another order
        torch.testing.assert_close(model(tokens, lengths), plain, atol=1e-6, rtol=0)
        assert all(len(steps) == T for steps in records.values())
    model.train()
    probe(model, tokens, lengths, labels)
    assert model.training
    assert all(p.grad is None for p in model.parameters())  # training's gradients untouched
    if encoder == "rnn":
        assert all(isinstance(m, nn.RNN) for layer in model.encoder.layers for m in layer)
    else:
        assert all(d.cell.trace is None for layer in model.encoder.lstm.layers for d in layer)


def test_last_state_gradient_of_the_forward_direction_matches_autograd_on_h_n():
    # With last-state pooling and one direction, dL/dh_T is the gradient at the last step.
    model, (tokens, lengths, labels) = model_and_batch("lstm", pooling="last")
    model.eval()
    x = model.embed(tokens.t())
    out, (h_n, _) = model.encoder.lstm(x, lengths)
    loss = nn.functional.cross_entropy(model.head(h_n[-1]), labels)
    (g,) = torch.autograd.grad(loss, h_n)
    want = g[-1].norm(dim=-1).mean()
    torch.testing.assert_close(probe(model, tokens, lengths, labels)["l0"]["grad_h"][-1], want)


def test_probe_batch_takes_long_reviews_cut_to_one_length():
    lengths = torch.tensor([3, 8, 10, 2, 9])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    split = EncodedSplit(torch.arange(int(lengths.sum()), dtype=torch.int32), offsets,
                         torch.tensor([0, 1, 0, 1, 1]))
    tokens, fed, labels = probe_batch(split, reviews=2, length=8)
    assert tokens.tolist() == [list(range(3, 11)), list(range(11, 19))]
    assert fed.tolist() == [8, 8] and labels.tolist() == [1, 0]


def test_training_with_diagnostics_logs_them_and_trains_identically(tmp_path):
    tarball = make_tarball(tmp_path / "imdb.tar.gz", per_label=60)
    common = [f"data.path={tarball}", f"data.cache_dir={tmp_path / 'cache'}",
              "data.min_frequency=1", "data.batch_size=16", "model.embed_dim=16",
              "model.hidden_size=16", "trainer.max_epochs=1", "trainer.progress=false",
              "trainer.threads=1", "trainer.test=false"]
    runs = {}
    for name, extra in (("plain", []), ("probed", ["diagnostics.every=2",
                                                   "diagnostics.length=20"])):
        runs[name] = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "sentiment_lstm.train", *common, *extra,
                               f"hydra.run.dir={runs[name]}"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (load_bundle(runs[n] / "last.ckpt")["state_dict"] for n in ("plain", "probed"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    events = EventAccumulator(str(runs["probed"]), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert len(events.Scalars("diag/grad_h/l0/t0000")) == 3  # 7 steps, every 2nd
    assert "diag/grad_h/l0_reverse/t0019" in tags["scalars"]
    assert "diag/gates/l0/forget" in tags["histograms"]
    assert {"diag/grad_h_by_position", "diag/forget_by_position"} <= set(tags["images"])
