"""Data-parallel training under a real torchrun with 2 gloo processes on CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import tarball_args

from sentiment_lstm.checkpoint import load_bundle

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
# 90 training reviews: two batches of 45 in one pool, so one epoch is one step on each rank,
# and the single-process run's one batch of 90 is the union of the two ranks' batches.
COMMON = ["model.embed_dim=16", "model.hidden_size=16", "model.dropout=0",
          "model.embed_dropout=0", "data.min_frequency=1", "data.pool_batches=100",
          "trainer.max_epochs=2", "trainer.patience=5", "trainer.keep_epoch_checkpoints=true",
          "trainer.progress=false", "trainer.threads=1"]


@pytest.fixture(scope="module")
def data_args(tmp_path_factory) -> list[str]:
    return tarball_args(tmp_path_factory.mktemp("data"), per_label=50)


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def ddp(tmp_path_factory, data_args) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    helper = Path(__file__).with_name("ddp_fit.py")
    run([*TORCHRUN, str(helper), str(out), *data_args, *COMMON, "data.batch_size=45"], out)
    return out


def test_one_ddp_step_equals_one_step_on_the_union_of_the_ranks_batches(tmp_path, ddp,
                                                                         data_args):
    single = tmp_path / "single"
    run([sys.executable, "-m", "sentiment_lstm.train", *data_args, *COMMON,
         "data.batch_size=90", f"hydra.run.dir={single}"], tmp_path)
    for epoch in ("epoch000", "epoch001"):  # after one step, and after two
        a = load_bundle(ddp / "run" / f"{epoch}.ckpt")["state_dict"]
        b = load_bundle(single / f"{epoch}.ckpt")["state_dict"]
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_ranks_report_identical_metrics_and_rank0_alone_writes(ddp):
    r0, r1 = (json.loads((ddp / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["processes"] == 2
    assert r0["history"] == r1["history"]  # train sums and val metrics, all-reduced
    assert r0["test"] == r1["test"]
    files = sorted(p.name for p in (ddp / "run").iterdir())
    assert len([f for f in files if f.startswith("events")]) == 1
    assert {"best.ckpt", "last.ckpt", "results.json", "tokenizer.json"} <= set(files)


def test_torchrun_cli_in_bf16_writes_one_output_directory(tmp_path, data_args):
    run([*TORCHRUN, "-m", "sentiment_lstm.train", *data_args, *COMMON, "data.batch_size=45",
         "trainer.max_epochs=1", "trainer.precision=bf16"], tmp_path)
    runs = list((tmp_path / "outputs" / "runs").iterdir())
    assert len(runs) == 1, runs
    assert (runs[0] / ".hydra" / "config.yaml").is_file()
    results = json.loads((runs[0] / "results.json").read_text())
    assert (results["processes"], results["precision"]) == (2, "bf16")
    assert 0 <= results["test"]["acc"] <= 1
    assert "epoch 0:" in (runs[0] / "train.log").read_text()


def test_sigterm_under_torchrun_then_resume_equals_uninterrupted_run(tmp_path, data_args):
    args = [*TORCHRUN, "-m", "sentiment_lstm.train", *data_args, *COMMON, "data.batch_size=4",
            "trainer.max_epochs=8", "trainer.patience=8"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    run([*args, f"hydra.run.dir={full}"], tmp_path)

    proc = subprocess.Popen([*args, f"hydra.run.dir={cut}"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (cut / "epoch000.ckpt").exists():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both workers
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert f"trainer.resume={cut}" in err
    assert not (cut / "results.json").exists()

    run([*args, f"trainer.resume={cut}"], tmp_path)
    a, b = (json.loads((d / "results.json").read_text()) for d in (full, cut))
    assert a["history"] == b["history"] and a["test"] == b["test"]
    wa, wb = (load_bundle(d / "last.ckpt")["state_dict"] for d in (full, cut))
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    assert not list((tmp_path / "outputs").glob("runs/*/results.json"))  # resumed in place


def worker_of_rank(launcher: subprocess.Popen, rank: int) -> int:
    """The pid of torchrun's worker process with this RANK."""
    for child in Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split():
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(child)
    raise AssertionError(f"no worker of rank {rank} under torchrun")


def test_a_signal_to_one_rank_stops_both_at_the_same_step(tmp_path, data_args):
    # One rank signalled at any point of a step: both ranks stop after the same step (the
    # step's all-reduce carries the flag), save, and say how to resume; none waits for ever.
    cut = tmp_path / "cut"
    proc = subprocess.Popen([*TORCHRUN, "-m", "sentiment_lstm.train", *data_args, *COMMON,
                             "data.batch_size=4", "trainer.max_epochs=50",
                             "trainer.patience=50", f"hydra.run.dir={cut}"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (cut / "epoch000.ckpt").exists():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    os.kill(worker_of_rank(proc, 0), signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert f"trainer.resume={cut}" in err and "Timeout" not in err, err[-2000:]
    step = load_bundle(cut / "last.ckpt")["progress"]["step"]
    assert f"stopped at step {step} and saved" in err


@pytest.mark.parametrize("code, status, printed", [(0, 0, ""), (130, 130, ""),
                                                    ("error: bad", 1, "error: bad")])
def test_finish_exits_as_sys_exit_would_and_flushes_stdout_first(code, status, printed):
    script = ("from sentiment_lstm.runtime import distributed\n"
              "print('out', end='')\n"  # block-buffered into a pipe: os._exit alone drops it
              f"distributed.finish({code!r})\n"
              "raise SystemExit('not reached')")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=env)
    assert (proc.returncode, proc.stdout, proc.stderr.strip()) == (status, "out", printed)
