"""Your own labeled files end to end through the real CLI: train on 4 classes, predict,
evaluate and compare on the checkpoints; a run without a test split; bad files refused."""

import json

import pytest
from helpers import TINY, make_topic_rows, run_cli, scalars, write_rows

from sentiment_lstm.checkpoint import load_bundle

FAST = [*TINY, "trainer.max_epochs=3", "optim.warmup_steps=0", "optim.lr=0.02"]
NAMES = ["food", "sport", "tech", "travel"]


def train(tmp_path, *overrides: str):
    return run_cli("data=files", *FAST, f"data.cache_dir={tmp_path / 'cache'}", *overrides,
                   cwd=tmp_path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An LSTM and an RNN trained on one CSV (validation carved from it), tested on another."""
    tmp = tmp_path_factory.mktemp("own")
    write_rows(tmp / "train.csv", make_topic_rows(80, classes=4, seed=0))
    write_rows(tmp / "test.csv", make_topic_rows(20, classes=4, seed=1))
    for enc in ("lstm", "rnn"):
        proc = train(tmp, f"model={enc}", f"data.train={tmp / 'train.csv'}",
                     f"data.test={tmp / 'test.csv'}", f"hydra.run.dir={tmp / enc}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp


def test_a_four_class_run_learns_and_reports_every_class(runs):
    results = json.loads((runs / "lstm" / "results.json").read_text())
    test = results["test"]
    assert results["labels"] == NAMES and load_bundle(runs / "lstm")["labels"] == NAMES
    assert test["acc"] > 0.45 and test["n"] == 80  # chance is 0.25
    assert set(test["per_class"]) == set(NAMES)
    assert [c["n"] for c in test["per_class"].values()] == [20, 20, 20, 20]
    assert sum(map(sum, test["confusion"])) == 80 and len(test["confusion"]) == 4
    assert test["macro_f1"] == pytest.approx(
        sum(c["f1"] for c in test["per_class"].values()) / 4)
    assert 0 < results["val"]["macro_f1"] <= 1
    # the buckets fit these 7-43-token texts: edges from the training lengths, not IMDB's
    assert list(test["acc_by_len"]) == ["0000-0009", "0010-0019", "0020-0029", "0030-inf"]
    tags = scalars(runs / "lstm")
    assert tags["test/macro_f1"] == [pytest.approx(test["macro_f1"])]
    assert tags["test/f1_by_class/food"] == [pytest.approx(test["per_class"]["food"]["f1"])]
    assert len(tags["val/macro_f1"]) == 3


def test_predict_gives_every_class_probability(runs):
    proc = run_cli("--checkpoint", str(runs / "lstm"), "--text", "a goal for the striker",
                   "--text", "", module="predict", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    row, empty = map(json.loads, proc.stdout.splitlines())
    assert list(row["probs"]) == NAMES and sum(row["probs"].values()) == pytest.approx(1, 1e-4)
    assert row["label"] == max(row["probs"], key=row["probs"].get)
    assert "prob_pos" not in row and empty["label"] is None and empty["probs"] is None


def test_evaluate_on_the_test_file_matches_the_run_and_compare_pairs_encoders(runs):
    out = runs / "ev.json"
    proc = run_cli("--checkpoint", str(runs / "lstm"), "--file", str(runs / "test.csv"),
                   "--out", str(out), module="evaluate", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    report, run = json.loads(out.read_text()), json.loads((runs / "lstm" / "results.json")
                                                          .read_text())["test"]
    assert report["confusion"] == run["confusion"] and report["per_class"] == run["per_class"]
    assert report["acc"] == run["acc"] and report["macro_f1"] == run["macro_f1"]
    assert "macro-F1" in proc.stdout and "travel" in proc.stdout
    own = run_cli("--checkpoint", str(runs / "lstm"), module="evaluate", cwd=runs)
    assert own.returncode == 0 and own.stdout == proc.stdout  # the run's own test file
    proc = run_cli(str(runs / "lstm"), str(runs / "rnn"), module="compare", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    assert "| 0030-inf | " in proc.stdout and "McNemar, lstm vs rnn, seeds 0" in proc.stdout


def test_jsonl_with_two_text_columns_and_no_test_split(tmp_path):
    rows = make_topic_rows(30, classes=3)
    (tmp_path / "t.jsonl").write_text("".join(
        json.dumps({"title": t.split()[0], "body": t, "topic": y}) + "\n" for t, y in rows))
    proc = train(tmp_path, f"data.train={tmp_path / 't.jsonl'}", "data.text_column=[title,body]",
                 "data.label_column=topic", "data.labels=[tech,sport,food]",
                 "loss.class_weights=auto", "trainer.test=true", "trainer.max_epochs=1",
                 f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["test"] is None and results["test_skipped"] == "the data has no test split"
    assert results["labels"] == ["tech", "sport", "food"]
    assert "no test: the data has no test split" in proc.stdout + proc.stderr


@pytest.mark.parametrize("content, override, message", [
    ("review,label\nx,a\ny,b\n", "", "row 1 has no column 'text' (columns found: 'review', "
                                     "'label')"),
    ("text,label\nx,a\ny,a\n", "", "the training split has a single class 'a'"),
    ("text,label\nx,a\ny,b\nz,a\nw,b\n", "loss.class_weights=[1,2,3]", "3 weights for 2 classes"),
])
def test_bad_files_fail_before_training_with_one_error_line(tmp_path, content, override,
                                                            message):
    (tmp_path / "t.csv").write_text(content)
    proc = train(tmp_path, f"data.train={tmp_path / 't.csv'}", "data.val_fraction=0.5",
                 f"hydra.run.dir={tmp_path / 'run'}", *filter(None, [override]))
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not list((tmp_path / "run").glob("*.ckpt"))
