"""End-to-end: the real CLI as a subprocess, on a small slice of the real IMDB tarball."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TINY, run_cli, scalars
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sentiment_lstm.checkpoint import load_bundle
from sentiment_lstm.evaluation.predictions import load_predictions


def logged_scalars(run_dir: Path) -> dict[str, list[float]]:
    """scalars(run_dir), after checking the figure and the hparams entry are there too."""
    (events,) = run_dir.glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events), size_guidance={"images": 0})
    acc.Reload()
    assert "test/acc_by_len" in acc.Tags()["images"]
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")
    return scalars(run_dir)


def test_sweep_trains_lstm_and_rnn_on_real_data(real_tarball, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "model=lstm,rnn", f"data.path={real_tarball}", "data.limit=240",
                   f"data.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}", *TINY,
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p for p in sweep.iterdir() if p.is_dir() and (p / "results.json").exists())
    assert [r.name for r in runs] == ["0_lstm_s0", "1_rnn_s0"]
    for run, encoder in zip(runs, ("lstm", "rnn")):
        results = json.loads((run / "results.json").read_text())
        assert results["encoder"] == encoder
        assert len(results["history"]) == 2
        test = results["test"]
        assert test["n"] == 240
        assert sum(b["n"] for b in test["acc_by_len"].values()) == 240
        assert 0 <= test["acc"] <= 1
        correct = sum(b["correct"] for b in test["acc_by_len"].values())
        assert correct / 240 == pytest.approx(test["acc"])
        kept = load_predictions(run / "test_predictions.csv")
        assert kept["lengths"].shape == (240,) and int(kept["correct"].sum()) == correct

        logged = logged_scalars(run)
        for tag in ("train/loss", "train/acc", "train/lr", "train/grad_norm",
                    "train/tokens_per_s", "val/loss", "val/acc", "test/acc",
                    "data/padding_fraction", "data/truncated_reviews"):
            assert tag in logged, tag
        assert logged["val/acc"] == pytest.approx([h["val_acc"] for h in results["history"]])
        assert logged["test/acc"] == pytest.approx([test["acc"]])
        for bucket, row in test["acc_by_len"].items():
            if row["n"]:
                assert logged[f"test/acc_by_len/{bucket}"] == pytest.approx([row["acc"]])

        best = load_bundle(run)  # a run directory resolves to best.ckpt
        assert best["model_args"]["encoder"] == encoder
        assert best["val_acc"] == pytest.approx(results["val"]["acc"])
        assert (run / "tokenizer.json").is_file() and (run / "last.ckpt").is_file()

    report = subprocess.run([sys.executable, "-m", "sentiment_lstm.compare", str(sweep),
                             "--out", str(tmp_path / "t.md"), "--plot", str(tmp_path / "p.png")],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "t.md").read_text()
    assert "| lstm (1 seed) | rnn (1 seed) |" in text and "McNemar, lstm vs rnn, seeds 0" in text
    assert (tmp_path / "p.png").stat().st_size > 0
    assert list(sweep.glob("events.out.tfevents.*"))  # the custom_scalars layout


@pytest.mark.parametrize("override, message", [
    ("model.colour=red", "model.colour: no such key"),
    ("model.hidden_size=big", "model.hidden_size=big: expected an integer"),
    ("model.hidden_size=-4", "model.hidden_size=-4 must be > 0"),
    ("model.dropout=1", "model.dropout=1.0 must be in [0, 1)"),
    ("optim.lr=-0.1", "optim.lr=-0.1 must be > 0"),
    ("eval.bucket_edges=[0,512,256]", "eval.bucket_edges=[0, 512, 256] must be non-negative"),
    ("trainer.resume=/nonexistent/run", "does not exist"),
    ("data.path=/nonexistent/aclImdb.tar.gz", "does not exist"),
    ("data.path={corrupt}", "not a readable aclImdb tarball: not a tar archive"),
    ("data.path={no_train}", "is not an aclImdb folder: it has no train/"),
])
def test_bad_input_fails_fast_with_one_clear_error(tmp_path, override, message):
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(random.Random(0).randbytes(5000))  # random bytes named .tar.gz
    no_train = tmp_path / "imdb" / "aclImdb"
    for part in ("test/pos", "test/neg"):
        (no_train / part).mkdir(parents=True)
    run_dir = tmp_path / "run"
    proc = run_cli(override.format(corrupt=corrupt, no_train=no_train.parent),
                   f"hydra.run.dir={run_dir}", f"data.cache_dir={tmp_path / 'cache'}",
                   cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert not list(run_dir.glob("*.ckpt"))

