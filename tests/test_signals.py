"""SIGUSR1 (a cluster's notice) stops training like SIGTERM; with trainer.requeue=true the
same command in the same run directory, as a requeued job runs it, resumes exactly."""

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

from sentiment_lstm import checkpoint

SMALL = ["model.embed_dim=16", "model.hidden_size=16", "data.batch_size=16",
         "data.min_frequency=1", "trainer.max_epochs=2", "trainer.patience=2",
         "trainer.progress=false", "trainer.threads=1", "trainer.requeue=true"]


@pytest.fixture
def data_args(tmp_path) -> list[str]:
    return tarball_args(tmp_path, per_label=100)


def train(*args: str, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}  # never scontrol here
    return subprocess.Popen([sys.executable, "-m", "sentiment_lstm.train", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigusr1_saves_and_the_same_command_resumes_its_own_run_exactly(tmp_path, data_args):
    full, cut = tmp_path / "full", tmp_path / "cut"
    done = train(*data_args, *SMALL, f"hydra.run.dir={full}", cwd=tmp_path)
    assert done.wait(timeout=300) == 0, done.communicate()[1][-3000:]

    proc = train(*data_args, *SMALL, f"hydra.run.dir={cut}", cwd=tmp_path)
    deadline = time.time() + 120
    log = cut / "train.log"
    while "epoch 0:" not in (log.read_text() if log.exists() else ""):  # poll, never sleep
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGUSR1: stopped at step" in err and f"trainer.resume={cut}" in err
    assert "not a SLURM job (no SLURM_JOB_ID), not requeued" in err
    assert "Traceback" not in err and not (cut / "results.json").exists()
    assert checkpoint.load_bundle(cut / "last.ckpt")["progress"]["epoch"] >= 1

    again = train(*data_args, *SMALL, f"hydra.run.dir={cut}", cwd=tmp_path)  # the requeue
    assert again.wait(timeout=300) == 0, again.communicate()[1][-3000:]
    assert "resuming this run directory's own" in (cut / "train.log").read_text()
    a, b = (json.loads((r / "results.json").read_text()) for r in (full, cut))
    assert a["val"] == b["val"] and a["test"] == b["test"] and a["history"] == b["history"]
    weights = checkpoint.load_bundle(full / "last.ckpt")["state_dict"]
    for name, tensor in checkpoint.load_bundle(cut / "last.ckpt")["state_dict"].items():
        assert torch.equal(weights[name], tensor), name
