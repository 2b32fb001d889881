"""explain's numbers: the running prediction is the model's output on every prefix, the gates
are LSTMCell.step's, and bad input gets one line and exit 2."""

import json

import numpy as np
import pytest
import torch
from helpers import make_checkpoint, run_cli

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.evaluation.explain import explain, fed_positions, to_json
from sentiment_lstm.inference import load_classifier
from sentiment_lstm.io import InputError

TEXT = "the movie was awful and boring but in the end i loved it , a superb film"


def prefix_outputs(clf, ids: list[int]) -> np.ndarray:
    """The model's own forward on each prefix, one at a time."""
    with torch.no_grad():
        return np.stack([clf.model(torch.tensor([ids[:t + 1]]), torch.tensor([t + 1]))
                         .softmax(-1)[0].numpy() for t in range(len(ids))])


@pytest.mark.parametrize("bidirectional,pooling", [(False, "last"), (False, "max_mean"),
                                                   (True, "max"), (True, "last")])
def test_running_prediction_is_the_output_on_each_prefix(tmp_path, bidirectional, pooling):
    clf = load_classifier(make_checkpoint(tmp_path / "m.ckpt", bidirectional=bidirectional,
                                          pooling=pooling), "cpu")
    (row,) = explain(clf, [TEXT])
    ids = row["token_ids"].tolist()
    np.testing.assert_allclose(row["running"][-1], row["probs"], atol=1e-6)
    np.testing.assert_allclose(row["running"], prefix_outputs(clf, ids), atol=1e-6)
    assert row["tokens"][-3:] == ["a", "superb", "film"]  # the text pieces, from the offsets


def test_long_bidirectional_review_samples_prefixes_exactly(tmp_path):
    clf = load_classifier(make_checkpoint(tmp_path / "m.ckpt", bidirectional=True), "cpu")
    (row,) = explain(clf, [f"{TEXT} {TEXT}"], cut=10)  # 34 tokens: one prefix in 4, and the last
    done = ~np.isnan(row["running"][:, 0])
    assert done.nonzero()[0].tolist() == [3, 7, 11, 15, 19, 23, 27, 31, 33]
    np.testing.assert_allclose(row["running"][done],
                               prefix_outputs(clf, row["token_ids"].tolist())[done], atol=1e-6)
    assert "one prefix in 4" in row["running_method"]


def test_gates_are_those_of_the_cell_step(tmp_path):
    clf = load_classifier(make_checkpoint(tmp_path / "m.ckpt", bidirectional=True), "cpu")
    (row,) = explain(clf, [TEXT])
    cell = clf.model.encoder.lstm.layers[0][0].cell  # forward direction
    x = clf.model.embed(torch.tensor(row["token_ids"]))  # (T, E)
    h = c = torch.zeros(1, cell.hidden_size)
    t = 5
    with torch.no_grad():
        for s in range(t):
            h, c = cell(x[s:s + 1], (h, c))
        gates = torch.addmm(cell.project(x[t:t + 1]), h, cell.weight_hh.t()).chunk(4, 1)
        h, c = cell(x[t:t + 1], (h, c))
    want = {"input": gates[0].sigmoid(), "forget": gates[1].sigmoid(),
            "candidate": gates[2].tanh(), "output": gates[3].sigmoid()}
    for name, value in want.items():
        np.testing.assert_allclose(row["gates"]["l0"][name][t], value[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(row["gates"]["l0"]["cell_norm"][t], c.norm().item(), atol=1e-5)
    shown = to_json(row, k=4)
    top = shown["top_units"]["l0"]["unit"]
    assert np.abs(row["units"]["l0"]).argmax() == top[0]
    np.testing.assert_allclose(shown["gates"]["l0"]["forget_top"][t],
                               want["forget"][0, top].numpy(), atol=1e-6)


def test_rnn_running_prediction_is_its_forward_on_each_prefix(tmp_path):
    lstm = load_classifier(make_checkpoint(tmp_path / "l.ckpt", max_len=10), "cpu")
    rnn = load_classifier(make_checkpoint(tmp_path / "r.ckpt", "rnn", max_len=8), "cpu")
    (row,) = explain(lstm, [TEXT], compare=rnn)
    assert row["positions"].tolist() == list(range(10)) and row["n_tokens"] == 17
    ids = row["token_ids"].tolist()
    want = prefix_outputs(rnn, ids[:8])  # the RNN is fed 8 tokens: the last two are NaN
    np.testing.assert_allclose(row["compare"]["running"][:8], want, atol=1e-6)
    assert np.isnan(row["compare"]["running"][8:]).all()
    np.testing.assert_allclose(row["compare"]["probs"], want[-1], atol=1e-6)
    assert row["compare"]["hidden_norm"]["l0"].shape == (10,)


def test_fed_positions_follow_the_checkpoints_truncation():
    assert fed_positions(10, 4, "head").tolist() == [0, 1, 2, 3]
    assert fed_positions(10, 4, "tail").tolist() == [6, 7, 8, 9]
    assert fed_positions(10, 4, "head_tail").tolist() == [0, 1, 8, 9]
    assert fed_positions(3, 4, "head").tolist() == [0, 1, 2]


def test_bad_input_is_refused(tmp_path):
    lstm = load_classifier(make_checkpoint(tmp_path / "l.ckpt"), "cpu")
    rnn = load_classifier(make_checkpoint(tmp_path / "r.ckpt", "rnn"), "cpu")
    with pytest.raises(CheckpointError, match="needs a custom LSTM"):
        explain(rnn, [TEXT])
    with pytest.raises(InputError, match="review 2 is empty"):
        explain(lstm, [TEXT, "  "])
    lstm.truncate = "none"
    with pytest.raises(InputError, match="explain shows at most 5000"):
        explain(lstm, ["film " * 6000])


def test_cli_writes_page_and_json_and_maps_errors(tmp_path):
    lstm, rnn = make_checkpoint(tmp_path / "l.ckpt"), make_checkpoint(tmp_path / "r.ckpt", "rnn")
    out, js = tmp_path / "p.html", tmp_path / "p.json"
    ok = run_cli("--checkpoint", str(lstm), "--compare", str(rnn), "--text", TEXT, "--text",
                 "film " * 3000, "--out", str(out), "--json", str(js), cwd=tmp_path,
                 module="explain")
    assert ok.returncode == 0, ok.stderr
    rows = json.loads(js.read_text())
    assert [len(r["tokens"]) for r in rows] == [17, 64] and rows[1]["n_tokens"] == 3000
    assert "2936 tokens not fed" in out.read_text()  # the huge review: the stated cut
    for args, message in (((str(rnn), "--text", TEXT), "needs a custom LSTM checkpoint"),
                          ((str(lstm), "--text", " "), "review 1 is empty"),
                          ((str(tmp_path / "none.ckpt"), "--text", TEXT), "does not exist")):
        bad = run_cli("--checkpoint", *args, "--out", str(out), cwd=tmp_path, module="explain")
        assert bad.returncode == 2 and bad.stderr.strip() == f"error: {bad.stderr[7:].strip()}"
        assert message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
