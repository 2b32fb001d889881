"""predict and evaluate on a checkpoint trained in the test on a slice of real IMDB."""

import json
import random
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import TINY, make_review, make_tarball, run_cli

from sentiment_lstm import checkpoint, compare, evaluate, io, predict
from sentiment_lstm.checkpoint import FORMAT
from sentiment_lstm.data import sources
from sentiment_lstm.data.corpus import read_labeled
from sentiment_lstm.evaluation.metrics import accuracy_by_length
from sentiment_lstm.inference import load_classifier, predict_throughput
from sentiment_lstm.reports.tables import find_results


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, real_tarball) -> Path:
    tmp = tmp_path_factory.mktemp("trained")
    proc = run_cli(f"data.path={real_tarball}", "data.limit=200", f"data.cache_dir={tmp / 'c'}",
                   f"hydra.run.dir={tmp / 'run'}", *TINY, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "run"


def cli(module: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=Path.cwd(), module=module, stdin=stdin)


def generated(n: int = 60) -> tuple[list[str], list[int]]:
    rng = random.Random(1)
    labels = [i % 2 for i in range(n)]
    return [make_review(y, rng, words=rng.randint(3, 200)) for y in labels], labels


def test_predict_and_evaluate_agree(run_dir, tmp_path):
    texts, labels = generated()
    (tmp_path / "reviews.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "labeled.jsonl").write_text("\n".join(
        json.dumps({"text": t, "label": ["neg", "pos"][y]}) for t, y in zip(texts, labels)))
    pred = cli("predict", "--checkpoint", str(run_dir), "--file", str(tmp_path / "reviews.txt"))
    assert pred.returncode == 0, pred.stderr
    rows = [json.loads(line) for line in pred.stdout.splitlines()]
    assert len(rows) == 60
    assert {r["label"] for r in rows} <= {"neg", "pos"}
    assert all((r["prob_pos"] >= 0.5) == (r["label"] == "pos") for r in rows)
    assert all(r["probs"]["pos"] == r["prob_pos"] for r in rows)
    assert all(r["truncated"] == (r["tokens"] > 96) for r in rows)

    out = tmp_path / "results.json"
    ev = cli("evaluate", "--checkpoint", str(run_dir / "best.ckpt"), "--file",
             str(tmp_path / "labeled.jsonl"), "--out", str(out))
    assert ev.returncode == 0, ev.stderr
    assert "accuracy" in ev.stdout and "confusion" in ev.stdout
    report = json.loads(out.read_text())
    hits = [r["label"] == ["neg", "pos"][y] for r, y in zip(rows, labels)]
    assert report["acc"] == pytest.approx(sum(hits) / 60)
    assert sum(sum(r) for r in report["confusion"]) == 60
    assert sum(b["n"] for b in report["acc_by_len"].values()) == 60
    by_bucket = {}
    for r, hit in zip(rows, hits):
        by_bucket.setdefault(r["bucket"], []).append(hit)
    for bucket, row in report["acc_by_len"].items():
        assert row["n"] == len(by_bucket.get(bucket, []))
        assert row["correct"] == sum(by_bucket.get(bucket, []))


def test_evaluate_can_feed_whole_reviews_to_a_model_trained_on_truncated_ones(run_dir, tmp_path):
    texts, labels = generated()
    labeled = tmp_path / "labeled.jsonl"
    labeled.write_text("\n".join(json.dumps({"text": t, "label": y})
                                 for t, y in zip(texts, labels)))
    reports = []
    for extra in ([], ["--truncate", "none"]):
        out = tmp_path / f"report{len(extra)}.json"
        assert evaluate.main(["--checkpoint", str(run_dir), "--file", str(labeled),
                              "--out", str(out), *extra]) == 0
        reports.append(json.loads(out.read_text()))
    assert reports[0]["truncate"] == "head" and reports[0]["truncated"] > 0
    assert reports[1]["truncate"] == "none" and reports[1]["truncated"] == 0


def test_evaluate_on_imdb_test_split_writes_a_report_compare_reads(run_dir, real_tarball,
                                                                    tmp_path):
    out = tmp_path / "test.json"
    ev = cli("evaluate", "--checkpoint", str(run_dir), "--data-path", str(real_tarball),
             "--out", str(out), "--predictions", str(tmp_path / "test_predictions.csv"))
    assert ev.returncode == 0, ev.stderr
    assert "(n=25000)" in ev.stdout
    report = json.loads(out.read_text())
    assert (report["encoder"], report["seed"], report["n"]) == ("lstm", 0, 25000)
    [found] = find_results([str(out)])  # with the predictions beside the report
    kept = found["predictions"]
    assert kept["correct"].shape == kept["lengths"].shape == (25000,)
    assert kept["correct"].float().mean().item() == pytest.approx(report["acc"])
    edges = load_classifier(str(run_dir), "cpu").edges
    assert accuracy_by_length(kept["correct"], kept["lengths"], edges) == report["acc_by_len"]
    assert compare.main([str(out), "--out", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()
    assert "| lstm (1 seed) |" in table and f"**{100 * report['acc']:.2f}**" in table


def test_evaluate_on_the_validation_split_reproduces_the_runs_val_accuracy(tmp_path):
    tarball = make_tarball(tmp_path / "imdb.tar.gz", per_label=100)  # 20 validation reviews
    run = tmp_path / "run"
    proc = run_cli(f"data.path={tarball}", f"data.cache_dir={tmp_path / 'c'}",
                   f"hydra.run.dir={run}", "data.min_frequency=1", "trainer.test=false",
                   *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "val.json"
    assert evaluate.main(["--checkpoint", str(run), "--data-path", str(tarball),
                          "--split", "val", "--out", str(out)]) == 0
    report, results = (json.loads(p.read_text()) for p in (out, run / "results.json"))
    assert report["data"] == "imdb/val" and report["n"] == 20
    assert 0.5 < results["val"]["acc"] < 1  # an imperfect model: another split would differ
    assert report["acc"] == pytest.approx(results["val"]["acc"], abs=1e-6)
    assert evaluate.main(["--checkpoint", str(run), "--file", str(out), "--split", "val"]) == 2


def test_several_checkpoints_are_averaged_weight_by_weight(run_dir, tmp_path, capsys):
    best, last = run_dir / "best.ckpt", run_dir / "last.ckpt"
    a, b = (checkpoint.load_bundle(p)["state_dict"] for p in (best, last))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # two different states
    clf = load_classifier([best, last], "cpu")
    for name, tensor in clf.model.state_dict().items():
        torch.testing.assert_close(tensor, (a[name] + b[name]) / 2)
    labeled = write(tmp_path / "l.csv", b"text,label\nfine,pos\nawful,neg\n")
    out = tmp_path / "r.json"
    assert evaluate.main(["--checkpoint", str(best), str(last), "--file", str(labeled),
                          "--out", str(out)]) == 0
    assert json.loads(out.read_text())["checkpoint"] == f"{best} {last}"
    other = checkpoint.load_bundle(best)
    other["model_args"] = {**other["model_args"], "hidden_size": 8}
    torch.save(other, tmp_path / "other.ckpt")
    assert evaluate.main(["--checkpoint", str(best), str(tmp_path / "other.ckpt"),
                          "--file", str(labeled)]) == 2
    assert "only checkpoints of one model average" in capsys.readouterr().err


def test_bench_measures_predict_throughput(run_dir, real_tarball):
    texts = sources.read(sources.local_source(real_tarball))["test"][0]
    report = predict_throughput(load_classifier(run_dir, "cpu"), texts, n=300)
    assert report["predict_reviews"] == 300 and report["predict_reviews_per_s"] > 0


def test_predict_reads_stdin_text_flags_and_csv_labels(run_dir, tmp_path):
    pred = cli("predict", "--checkpoint", str(run_dir), stdin="A great film.\nAwful.\n")
    assert pred.returncode == 0 and len(pred.stdout.splitlines()) == 2
    clf = load_classifier(run_dir)
    rows = clf.predict(["", "   ", "x " * 500_000])  # empty, blank, a 1 MB review
    assert rows[0] == {"label": None, "prob_pos": None, "probs": None, "tokens": 0,
                       "bucket": "0000-0127", "truncated": False, "empty": True}
    assert rows[1]["empty"] and rows[1]["label"] is None
    assert rows[2]["truncated"] and rows[2]["tokens"] == 500_000 and rows[2]["label"]
    csv_path = tmp_path / "x.csv"
    csv_path.write_text('text,label\n"Good, very good.",1\nBad.,NEG\n')
    assert read_labeled(csv_path, clf.labels) == (["Good, very good.", "Bad."], [1, 0])


def test_line_breaks_inside_a_review_do_not_split_it(tmp_path):
    # U+0085 is how IMDB's cp1252 ellipsis decodes; str.splitlines() would cut there
    texts = ["Slow\x85 then great.", "Dull\u2028and long.", "Fine\x0cfilm."]
    path = write(tmp_path / "r.txt", "\r\n".join(texts).encode() + b"\n\n")
    assert io.read_texts(str(path)) == texts
    jsonl = write(tmp_path / "r.jsonl", "\n".join(json.dumps({"text": t}, ensure_ascii=False)
                                                  for t in texts).encode())
    assert io.read_texts(str(jsonl)) == texts
    # CSV: a quoted review may also span lines (blank ones too) and be longer than 128 KB
    long = "word " * 40_000
    rows = ['"Slow\x85 then great.\n\nReally.",pos', '"Dull\u2028""long""",0', f"{long},1"]
    path = write(tmp_path / "l.csv", ("text,label\r\n" + "\r\n".join(rows)).encode())
    assert read_labeled(path, ["neg", "pos"]) == (
        ["Slow\x85 then great.\n\nReally.", 'Dull\u2028"long"', long], [1, 0, 1])


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("case, message", [
    ("non_utf8", "line 2 is not valid UTF-8"),
    ("empty_file", "no reviews"),
    ("missing_file", "does not exist"),
    ("bad_jsonl", 'line 1 is not a JSON object with a "text" field'),
    ("number_text", 'line 2: "text" is int, not a string'),
    ("directory", "is a directory, not a file"),
])
def test_predict_bad_input(run_dir, tmp_path, capsys, case, message):
    path = {"non_utf8": lambda: write(tmp_path / "a.txt", b"fine\nbad \xff\xfe bytes\n"),
            "empty_file": lambda: write(tmp_path / "a.txt", b"\n  \n"),
            "missing_file": lambda: tmp_path / "nope.txt",
            "bad_jsonl": lambda: write(tmp_path / "a.jsonl", b'{"review": "x"}\n'),
            "number_text": lambda: write(tmp_path / "a.jsonl", b'{"text": "ok"}\n{"text": 42}\n'),
            "directory": lambda: tmp_path}[case]()
    assert predict.main(["--checkpoint", str(run_dir), "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("content, message", [
    (b"review,stars\nx,1\n", "row 1 has no column 'text' (columns found: 'review', 'stars'); "
                             "pass --text-column / --label-column"),
    (b"text,label\nx,maybe\n", "unknown label 'maybe'"),
    (b'text,label\n"an unclosed quote,1\n', "row 1 has no 'label' value"),
])
def test_evaluate_bad_labeled_file(run_dir, tmp_path, capsys, content, message):
    path = write(tmp_path / "l.csv", content)
    assert evaluate.main(["--checkpoint", str(run_dir), "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("module", ["predict", "evaluate"])
def test_a_closed_pipe_stops_quietly_and_evaluate_still_writes_out(run_dir, tmp_path, module):
    labeled = write(tmp_path / "l.csv", b"text,label\nfine,pos\nawful,neg\n")
    out = tmp_path / "report.json"
    args = {"predict": ["--text", "fine"] * 500,
            "evaluate": ["--file", str(labeled), "--out", str(out)]}[module]
    command = [sys.executable, "-m", f"sentiment_lstm.{module}", "--checkpoint", str(run_dir),
               *args]
    # `| true` closes the pipe at once, as `| head` does after its lines
    proc = subprocess.run(f"{shlex.join(command)} | true", shell=True, timeout=300,
                          capture_output=True, text=True)
    assert proc.stderr == ""  # SIGPIPE's default action, no BrokenPipeError traceback
    if module == "evaluate":
        assert json.loads(out.read_text())["n"] == 2  # written before the report is printed


def test_evaluate_refuses_an_out_path_it_cannot_write_before_evaluating(run_dir, tmp_path,
                                                                       capsys):
    path = write(tmp_path / "l.csv", b"text,label\nfine,pos\n")
    out = tmp_path / "missing" / "report.json"
    assert evaluate.main(["--checkpoint", str(run_dir), "--file", str(path),
                          "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "no directory" in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""  # refused up front, not after the evaluation


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("no_ckpt_dir", "no best.ckpt or last.ckpt"),
    ("truncated", "not a loadable checkpoint"),
    ("not_ckpt", "not a loadable checkpoint"),
    ("pickled", "not a loadable checkpoint"),
    ("wrong_weights", "do not fit its model"),
])
def test_predict_bad_checkpoint(run_dir, tmp_path, capsys, case, message):
    good = run_dir / "best.ckpt"
    target = tmp_path / "x.ckpt"
    if case == "no_ckpt_dir":
        target = tmp_path
    elif case == "truncated":
        write(target, good.read_bytes()[:4000])
    elif case == "not_ckpt":
        write(target, b"just some text")
    elif case == "pickled":
        torch.save({"format": FORMAT, "obj": Path("x")}, target)
    elif case == "wrong_weights":
        bundle = torch.load(good, weights_only=True)
        bundle["model_args"]["hidden_size"] = 7
        torch.save(bundle, target)
    assert predict.main(["--checkpoint", str(target), "--text", "ok"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_trains_on_cuda_and_the_checkpoint_evaluates_on_cpu(tiny_tarball, tmp_path, precision):
    run = tmp_path / "run"
    proc = run_cli(f"data.path={tiny_tarball}", f"data.cache_dir={tmp_path / 'cache'}",
                   f"hydra.run.dir={run}", "trainer.device=cuda", f"trainer.precision={precision}",
                   *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["device"].startswith("cuda") and results["precision"] == precision
    report = tmp_path / "cpu.json"
    ev = cli("evaluate", "--checkpoint", str(run), "--data-path", str(tiny_tarball),
             "--device", "cpu", "--out", str(report))
    assert ev.returncode == 0, ev.stderr[-3000:]
    # fp32 on either device: the same predictions up to ties at 0.5; bf16 within a review
    assert abs(json.loads(report.read_text())["acc"] - results["test"]["acc"]) <= 1 / 40


def test_a_gate_ablation_trains_reports_its_variant_and_predicts(tiny_tarball, tmp_path):
    proc = run_cli(f"data.path={tiny_tarball}", f"data.cache_dir={tmp_path / 'c'}",
                   f"hydra.run.dir={tmp_path / 'run'}", "model.variant=forget_only", *TINY,
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (results["encoder"], results["variant"]) == ("lstm", "forget_only")
    bundle = checkpoint.load_bundle(tmp_path / "run")
    assert bundle["state_dict"]["encoder.lstm.layers.0.0.cell.weight_hh"].shape == (2 * 16, 16)
    clf = load_classifier(str(tmp_path / "run"))
    assert clf.variant == "forget_only" and len(clf.predict(["a fine film"])) == 1


def test_a_checkpoint_without_a_variant_loads_as_vanilla(run_dir, tmp_path):
    bundle = checkpoint.load_bundle(run_dir)
    del bundle["model_args"]["variant"]  # as written before gate ablations existed
    torch.save(bundle, tmp_path / "old.ckpt")
    old, new = load_classifier(str(tmp_path / "old.ckpt")), load_classifier(str(run_dir))
    assert old.variant == "vanilla"
    assert old.predict(["a fine film", "dull"]) == new.predict(["a fine film", "dull"])
