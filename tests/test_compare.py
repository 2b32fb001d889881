import json

import pytest
import torch
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.custom_scalar import layout_pb2

from sentiment_lstm import compare
from sentiment_lstm.evaluation.predictions import load_predictions, save_predictions


def result(encoder: str, seed: int, accs: list[float], n: list[int]) -> dict:
    names = ["0000-0127", "0128-inf"]
    return {"encoder": encoder, "seed": seed, "test": {
        "n": sum(n), "acc": sum(a * k for a, k in zip(accs, n)) / sum(n),
        "acc_by_len": {b: {"n": k, "acc": a, "ci95": [a - 0.1, a + 0.1]}
                       for b, a, k in zip(names, accs, n)}}}


def test_table_single_seed_shows_interval_and_seeds_show_mean_std(tmp_path, capsys):
    runs = {"a": result("lstm", 0, [0.9, 0.8], [10, 10]),
            "b": result("rnn", 0, [0.6, 0.5], [10, 10]),
            "c": result("rnn", 1, [0.8, 0.5], [10, 10])}
    for name, r in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(r))
    assert compare.main([str(tmp_path), "--out", str(tmp_path / "t.md")]) == 0
    lines = (tmp_path / "t.md").read_text().splitlines()
    assert lines[0] == "| length (tokens) | n | lstm (1 seed) | rnn (2 seeds) |"
    assert lines[2] == "| 0000-0127 | 10 | 90.0 [80.0, 100.0] | 70.0 +- 14.1 |"
    assert lines[3] == "| 0128-inf | 10 | 80.0 [70.0, 90.0] | 50.0 +- 0.0 |"
    assert lines[4] == "| all | 20 | **85.00** | **60.00 +- 7.07** |"
    assert capsys.readouterr().out.startswith("| length")


def test_no_results_is_an_error(tmp_path, capsys):
    assert compare.main([str(tmp_path)]) == 2
    assert "no results file" in capsys.readouterr().err


def test_pairs_runs_per_bucket_plots_and_writes_a_tensorboard_layout(tmp_path):
    # 8 short reviews (< 128 tokens) and 6 long ones; lstm is right on all, rnn on some.
    lengths = torch.tensor([10] * 8 + [300] * 6)
    rnn_right = torch.tensor([True] * 6 + [False] * 2 + [True] * 1 + [False] * 5)
    for name, encoder, correct in (("a", "lstm", torch.ones(14, dtype=torch.bool)),
                                   ("b", "rnn", rnn_right)):
        run = tmp_path / name
        run.mkdir()
        short, long_ = correct[:8].float().mean().item(), correct[8:].float().mean().item()
        (run / "results.json").write_text(json.dumps(result(encoder, 0, [short, long_], [8, 6])))
        save_predictions(correct, lengths, run / "test_predictions.csv")
    png = tmp_path / "by_length.png"
    assert compare.main([str(tmp_path), "--out", str(tmp_path / "t.md"), "--plot", str(png)]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "| only lstm right | only rnn right | p |" in text
    assert "| 0000-0127 | 2 | 0 | 0.5 |" in text  # exact: 2 * (1/2)^2
    assert "| 0128-inf | 5 | 0 | 0.062 |" in text  # exact: 2 * (1/2)^5 = 0.0625
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    layout = None
    for events in tmp_path.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                if value.tag == "custom_scalars__config__":
                    layout = layout_pb2.Layout.FromString(value.tensor.string_val[0])
    assert layout is not None
    charts = {c.title: c.multiline.tag for cat in layout.category for c in cat.chart}
    assert charts["0128-inf"] == ["test/acc_by_len/0128-inf$"]


def test_predictions_round_trip_as_csv(tmp_path):
    correct, lengths = torch.tensor([True, False, True]), torch.tensor([5, 1200, 0])
    save_predictions(correct, lengths, tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text() == "length,correct\n5,1\n1200,0\n0,1\n"
    kept = load_predictions(tmp_path / "p.csv")
    assert kept["correct"].equal(correct) and kept["lengths"].equal(lengths.to(torch.int32))


@pytest.mark.parametrize("name, content, message", [
    ("test_predictions.csv", b"length,correct\n5,1\n7,2\n", "not a predictions file"),
    ("test_predictions.csv", b"length,correct\n", "not a predictions file"),
    ("test_predictions.csv", b"\xff\xfe", "not a predictions file"),
    ("results.json", b'{"encoder": "lstm", "te', "not a JSON file"),
])
def test_corrupt_results_or_predictions_are_a_one_line_error(tmp_path, capsys, name, content,
                                                             message):
    (tmp_path / "results.json").write_text(json.dumps(result("lstm", 0, [0.9, 0.8], [1, 1])))
    (tmp_path / name).write_bytes(content)
    assert compare.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / name}: {message}") and err.count("\n") == 1


def test_variants_are_columns_of_their_own_and_paired_with_vanilla(tmp_path):
    # vanilla right on all 14, coupled wrong on 3 long ones, rnn wrong on 4 long ones; a run
    # without "variant" (older results.json) counts as vanilla.
    lengths = torch.tensor([10] * 8 + [300] * 6)
    right = {"lstm": [True] * 14, "lstm:coupled": [True] * 11 + [False] * 3,
             "rnn": [True] * 10 + [False] * 4}
    for name, (encoder, variant) in {"a": ("lstm", None), "b": ("lstm", "coupled"),
                                     "c": ("rnn", "vanilla")}.items():
        key = encoder if variant in (None, "vanilla") else f"{encoder}:{variant}"
        correct = torch.tensor(right[key])
        r = result(encoder, 0, [correct[:8].float().mean().item(),
                                correct[8:].float().mean().item()], [8, 6])
        if variant:
            r["variant"] = variant
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(r))
        save_predictions(correct, lengths, tmp_path / name / "test_predictions.csv")
    assert compare.main([str(tmp_path), "--out", str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert text.splitlines()[0] == ("| length (tokens) | n | lstm (1 seed) | lstm:coupled (1 seed)"
                                    " | rnn (1 seed) |")
    assert "| 0128-inf | 6 | 100.0 [90.0, 110.0] | 50.0 [40.0, 60.0] | 33.3 [23.3, 43.3] |" in text
    assert "McNemar, lstm vs lstm:coupled" in text and "McNemar, lstm vs rnn" in text
    assert "lstm:coupled vs rnn" not in text  # ablations: each against vanilla only
    assert "| 0128-inf | 3 | 0 | 0.25 |" in text  # exact: 2 * (1/2)^3
