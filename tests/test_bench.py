import json

import pytest
from helpers import make_tarball

from sentiment_lstm import bench


def test_bench_times_every_candidate_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--batch", "4", "--embed", "8", "--hidden", "8", "--lengths", "5", "7",
                "--repeats", "2", "--warmup", "1", "--device", "cpu", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert {(r["candidate"], r["T"]) for r in rows} == {
        (c, t) for c in ("custom_lstm", "custom_lstm_autograd", "custom_lstm_scan", "nn.LSTM",
                         "nn.RNN")
        for t in (5, 7)}
    for r in rows:
        assert r["seconds"] > 0 and r["tokens_per_s"] == 4 * r["T"] / r["seconds"]
        if r["candidate"] == "nn.LSTM":
            assert r["ratio_to_nn_lstm"] == 1.0
    assert "custom_lstm" in capsys.readouterr().out


def test_bench_bf16_adds_autocast_rows(tmp_path):
    out = tmp_path / "bench.json"
    bench.main(["--batch", "4", "--embed", "8", "--hidden", "8", "--lengths", "5", "--repeats",
                "1", "--warmup", "1", "--device", "cpu", "--bf16", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["candidate"] for r in rows] == [
        "custom_lstm", "custom_lstm_autograd", "custom_lstm_scan", "nn.LSTM", "nn.RNN",
        "custom_lstm+bf16", "nn.RNN+bf16"]


def test_bench_data_times_preparation_and_the_training_loop(tmp_path):
    tarball = make_tarball(tmp_path / "imdb.tar.gz", per_label=200)
    out = tmp_path / "bench.json"
    bench.main(["--lengths", "--data-path", str(tarball), "--loop", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["rows"] == []
    data = report["data"]
    assert data["prepare_cold_s"] > data["prepare_warm_s"] > 0
    assert 0 <= data["padding_fraction"] < 1
    assert data["pure_tokens_per_s"] > 0 and data["loop_tokens_per_s"] > 0
    assert data["loop_over_pure"] == pytest.approx(
        data["loop_tokens_per_s"] / data["pure_tokens_per_s"])
    assert data["fused_speedup"] == pytest.approx(
        data["pure_tokens_per_s"] / data["pure_autograd_lstm_tokens_per_s"])
    assert data["loop_page_faults_per_step"] >= 0


def test_bench_reports_the_machine_and_gflops_from_the_formula(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--batch", "4", "--embed", "8", "--hidden", "6", "--lengths", "5", "--layers",
                "2", "--bidirectional", "--repeats", "1", "--warmup", "1", "--device", "cpu",
                "--threads", "1", "--json", str(out)])
    report = json.loads(out.read_text())
    machine = report["machine"]
    assert machine["threads"] == 1 and machine["cpu"]
    assert set(machine["isa"]) <= {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    header = capsys.readouterr().out.splitlines()[0]
    assert f"cpu: {machine['cpu']}" in header and "threads: 1" in header
    # fwd 2*T*B*(I+H)*G*H per direction and layer, bwd 2x fwd; I = E, then H * 2 directions
    per_gate = 2 * 3 * 2 * 5 * 4 * ((8 + 6) + (12 + 6)) * 6
    for r in report["rows"]:
        G = 1 if r["candidate"] == "nn.RNN" else 4
        assert r["gflop_per_s"] == pytest.approx(per_gate * G / r["seconds"] / 1e9)


def test_bench_rejects_zero_threads(capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--threads", "0", "--lengths"])
    assert e.value.code == 2
    assert capsys.readouterr().err == "error: --threads 0: must be >= 1\n"
