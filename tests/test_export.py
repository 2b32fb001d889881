"""`python -m sentiment_lstm.export`: ONNX for serving, a Hugging Face folder for sharing."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from helpers import TINY, make_checkpoint, make_tarball, run_cli

from sentiment_lstm.inference import load_classifier
from sentiment_lstm.sharing.hub import HubSentimentClassifier, load_hub_classifier

TEXTS = ["A great, wonderful film.", "", "awful " * 140,  # over max_len: cut to 96 tokens
         "The plot was boring and the actor was terrible, the worst scene.", "Superb."]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    tarball = make_tarball(tmp / "imdb.tar.gz", per_label=40)
    run = tmp / "run"
    proc = run_cli(f"data.path={tarball}", f"data.cache_dir={tmp / 'cache'}", *TINY,
                   "trainer.max_epochs=1", "data.min_frequency=1", "model.num_layers=2",
                   "trainer.threads=1", f"hydra.run.dir={run}", cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def export(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, module="export")


def test_onnx_matches_the_checkpoint_on_mixed_lengths_and_the_example_runs(run, tmp_path):
    out = tmp_path / "onnx"
    proc = export("--checkpoint", str(run), "--format", "onnx", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "model.onnx", "predict.py", "tokenizer.json"]
    config = json.loads((out / "config.json").read_text())
    assert (config["labels"], config["max_len"], config["truncate"]) == (["neg", "pos"], 96,
                                                                          "head")
    clf = load_classifier(run)
    enc = [e.ids[:96] or [0] for e in clf.tokenizer.encode_batch(TEXTS)]
    lengths = torch.tensor([len(ids) for ids in enc])  # 5 reviews, 1 to 96 tokens
    tokens = torch.zeros(len(enc), int(lengths.max()), dtype=torch.int64)
    for i, ids in enumerate(enc):
        tokens[i, :len(ids)] = torch.tensor(ids)
    with torch.no_grad():
        want = clf.model(tokens, lengths).softmax(-1).numpy()  # the custom LSTM itself
    session = ort.InferenceSession(str(out / "model.onnx"))
    got = session.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})[0]
    assert got.shape == (5, 2)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    single = session.run(None, {"tokens": tokens[3:4, :lengths[3]].numpy(),
                                "lengths": lengths[3:4].numpy()})[0]
    np.testing.assert_allclose(single, want[3:4], atol=1e-5, rtol=0)

    # The README's snippet, as shipped beside the model, agrees with predict's prob_pos.
    snippet = subprocess.run([sys.executable, str(out / "predict.py"), str(out), *TEXTS],
                             capture_output=True, text=True, timeout=120)
    assert snippet.returncode == 0, snippet.stderr
    probs = [row["pos"] for row in json.loads(snippet.stdout)]
    expected = [row["prob_pos"] for row in clf.predict(TEXTS)]
    np.testing.assert_allclose(probs[:1] + probs[2:], expected[:1] + expected[2:], atol=1e-5)


def test_hf_folder_loads_back_with_the_same_predictions_and_a_model_card(run, tmp_path):
    out = tmp_path / "hf"
    proc = export("--checkpoint", str(run / "best.ckpt"), "--format", "hf", "--out", str(out),
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "config.json", "model.safetensors", "tokenizer.json"]
    clf = load_classifier(run)
    module = HubSentimentClassifier.from_pretrained(out)
    for name, tensor in clf.model.state_dict().items():
        assert torch.equal(module.state_dict()[name], tensor), name
    assert load_hub_classifier(out).predict(TEXTS) == clf.predict(TEXTS)
    card = (out / "README.md").read_text()
    results = json.loads((run / "results.json").read_text())
    assert f"IMDB test accuracy {results['test']['acc']:.4f}" in card
    for name, bucket in results["test"]["acc_by_len"].items():
        assert f"| {name} | {bucket['n']} | {bucket['acc']:.4f} |" in card
    assert "truncate=head" in card and "library_name: sentiment_lstm" in card


def test_bad_input_gets_one_error_line_and_exit_code_2(run, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "fake.ckpt").write_text("not a checkpoint")
    cases = {("--format", "tflite", "--checkpoint", str(run)): "unknown format 'tflite'",
             ("--checkpoint", str(tmp_path / "fake.ckpt")): "is not a loadable checkpoint",
             ("--checkpoint", str(run), "--out", str(tmp_path / "full")): "is not empty",
             ("--checkpoint", str(run), "--format", "onnx", "--push-to-hub", "a/b"):
                 "--push-to-hub needs --format hf"}
    for args, message in cases.items():
        if "--out" not in args:
            args = (*args, "--out", str(tmp_path / "new"))
        proc = export(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "new").exists()
    variant = make_checkpoint(tmp_path / "coupled.ckpt", variant="coupled")
    proc = export("--checkpoint", str(variant), "--format", "onnx", "--out",
                  str(tmp_path / "v"), cwd=tmp_path)
    assert proc.returncode == 2 and "no nn.LSTM counterpart" in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert export("--checkpoint", str(run), "--out", str(tmp_path / "full"), "--force",
                  cwd=tmp_path).returncode == 0
