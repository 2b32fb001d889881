import json

from sentiment_lstm import compare


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
