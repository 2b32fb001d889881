"""Resume after SIGTERM or SIGKILL, crash-safe checkpoints, non-finite losses, determinism."""

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
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from sentiment_lstm import checkpoint, io

SMALL = ["model.embed_dim=32", "model.hidden_size=32", "data.batch_size=16",
         "data.min_frequency=1", "trainer.max_epochs=3", "trainer.patience=3",
         "trainer.progress=false", "trainer.log_every=5", "trainer.threads=1"]


@pytest.fixture(scope="module")
def data_args(tmp_path_factory) -> list[str]:
    return tarball_args(tmp_path_factory.mktemp("data"), per_label=150)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data_args) -> Path:
    """SMALL trained without interruption: what every resumed run must end as."""
    full = tmp_path_factory.mktemp("full") / "run"
    proc = train(*data_args, *SMALL, f"hydra.run.dir={full}", cwd=full.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return full


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sentiment_lstm.train", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sentiment_lstm.train", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def final_state(run: Path) -> tuple[dict, dict]:
    results = json.loads((run / "results.json").read_text())
    return results, checkpoint.load_bundle(run / "last.ckpt")["state_dict"]


def logged_steps(run: Path, tag: str = "train/loss") -> list[int]:
    """The steps of `tag` as TensorBoard shows them: every event file of the run read in
    order by one accumulator, which drops what a later file's session start purges."""
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def assert_same_end(run: Path, full: Path) -> None:
    """run ended bit for bit as the uninterrupted run: weights, history, results."""
    (full_results, full_weights), (results, weights) = final_state(full), final_state(run)
    for key in ("val", "test", "best_epoch", "history", "data", "skipped_batches"):
        assert results[key] == full_results[key], key
    assert weights.keys() == full_weights.keys()
    for name, tensor in full_weights.items():
        assert torch.equal(weights[name], tensor), name
    assert logged_steps(run) == logged_steps(full)  # no gap, no duplicate step
    assert logged_steps(run, "val/acc") == logged_steps(full, "val/acc")


def test_sigterm_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path, data_args,
                                                                full_run):
    full = full_run
    cut = tmp_path / "runs" / "cut"
    proc = start(*data_args, *SMALL, f"hydra.run.dir={cut}", cwd=tmp_path)
    deadline = time.time() + 120
    # Signal as soon as epoch 0 is logged: two epochs are left, whatever the machine's speed
    # (a fixed sleep after start-up can outlast all of training on a fast machine).
    while "epoch 0:" not in _read(cut / "train.log"):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"trainer.resume={cut}" in err and "Traceback" not in err
    assert not (cut / "results.json").exists()
    progress = checkpoint.load_bundle(cut / "last.ckpt")["progress"]
    assert progress["epoch"] >= 1
    first_s = progress["elapsed_s"]

    # trainer.resume=auto finds the unfinished run beside the new one
    resumed_wall_s = time.perf_counter()
    resumed = train("trainer.resume=auto", f"hydra.run.dir={tmp_path / 'runs' / 'again'}",
                    *data_args, cwd=tmp_path)
    resumed_wall_s = time.perf_counter() - resumed_wall_s
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_end(cut, full)
    # total_s counts both processes: the first's time saved with last.ckpt, then the second's
    cut_results = json.loads((cut / "results.json").read_text())
    assert 0 < cut_results["timing"]["total_s"] - first_s < resumed_wall_s
    log = (cut / "train.log").read_text()  # the whole log, not only the first process's
    assert log.count("epoch 0:") == log.count("epoch 2:") == log.count("results in") == 1
    assert f"resuming {cut} at epoch" in log


def saved_progress(path: Path, seen: int) -> tuple[int, dict | None]:
    """(mtime, progress) of a checkpoint rewritten since mtime `seen`, else (seen, None)."""
    try:
        mtime = path.stat().st_mtime_ns
        if mtime == seen:
            return seen, None
        return mtime, checkpoint.load_bundle(path)["progress"]
    except (FileNotFoundError, checkpoint.CheckpointError):  # not there yet
        return seen, None


def test_sigkill_right_after_a_periodic_checkpoint_resumes_from_it(tmp_path, data_args,
                                                                  full_run):
    # 17 batches an epoch; checkpoints every 6 steps and at each epoch's end. Kill as soon as
    # the first mid-epoch checkpoint of epoch 1 (step 18) is on disk: the next one is 6
    # steps away, so the kill lands between two periodic saves, as a crash would.
    cut = tmp_path / "cut"
    proc = start(*data_args, *SMALL, "trainer.checkpoint_every_steps=6",
                 f"hydra.run.dir={cut}", cwd=tmp_path)
    deadline, seen, progress = time.time() + 120, 0, None
    while progress is None or progress["epoch"] < 1 or progress["batch"] == 0:
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.005)
        seen, progress = saved_progress(cut / "last.ckpt", seen)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (cut / "results.json").exists()
    saved = checkpoint.load_bundle(cut / "last.ckpt")["progress"]
    assert saved["epoch"] == 1 and saved["batch"] > 0 and saved["step"] % 6 == 0

    # What a killed process had flushed past its checkpoint (its writer flushes every 2 min,
    # checkpoints come every 10 by default): a 999 at each later step, which the resumed
    # run's purge_step must hide.
    with SummaryWriter(str(cut)) as stale:
        for step in range(saved["step"] + 1, saved["step"] + 12):
            stale.add_scalar("train/loss", 999.0, step)

    resumed = train(f"trainer.resume={cut}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {cut} at epoch 1, batch {saved['batch']}" in (cut / "train.log").read_text()
    assert len(list(cut.glob("events.out.tfevents.*"))) == 3
    acc = EventAccumulator(str(cut))
    acc.Reload()
    assert 999.0 not in [e.value for e in acc.Scalars("train/loss")]
    assert_same_end(cut, full_run)  # also: checkpointing every 6 steps changed no number


def test_resume_takes_a_larger_patience_and_refuses_other_changes(tmp_path, data_args):
    # A learning rate so small that val/acc never improves after epoch 0: patience 1 stops
    # after epoch 1; resumed with patience 3 the run must end as one that had 3 from the start.
    args = [*data_args, *(a for a in SMALL if "patience" not in a), "trainer.max_epochs=4",
            "optim.lr=1e-9"]
    full, stopped = tmp_path / "full", tmp_path / "stopped"
    for run, patience in ((full, 3), (stopped, 1)):
        proc = train(*args, f"trainer.patience={patience}", f"hydra.run.dir={run}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(json.loads((stopped / "results.json").read_text())["history"]) == 2

    refused = train(f"trainer.resume={stopped}", "trainer.patience=3", "model.hidden_size=64",
                    cwd=tmp_path)
    assert refused.returncode == 2
    assert "model.hidden_size=64 cannot change when resuming" in refused.stderr
    assert refused.stderr.count("\n") == 1
    resumed = train(f"trainer.resume={stopped}", "trainer.patience=3", *data_args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(json.loads((stopped / "results.json").read_text())["history"]) == 4
    assert_same_end(stopped, full)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_same_seed_gives_identical_results(tmp_path, data_args):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run, keep in zip(runs, ("false", "true")):
        proc = train(*data_args, *SMALL, "trainer.max_epochs=2", f"hydra.run.dir={run}",
                     f"trainer.keep_epoch_checkpoints={keep}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in runs[0].glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    assert sorted(p.name for p in runs[1].glob("*.ckpt")) == [
        "best.ckpt", "epoch000.ckpt", "epoch001.ckpt", "last.ckpt"]
    a, b = (json.loads((r / "results.json").read_text()) for r in runs)
    assert a["val"] == b["val"] and a["test"] == b["test"]


def test_adversarial_training_runs_end_to_end_and_changes_training(tmp_path, data_args):
    histories = []
    for eps in ("0", "2.0"):
        run = tmp_path / f"eps{eps}"
        proc = train(*data_args, *SMALL, "trainer.max_epochs=1", f"optim.adversarial={eps}",
                     f"hydra.run.dir={run}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        histories.append(json.loads((run / "results.json").read_text())["history"])
    assert histories[0][0]["train_loss"] != histories[1][0]["train_loss"]


def test_crash_between_write_and_rename_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io.atomic_save({"format": checkpoint.FORMAT, "step": 1}, path)

    def crash(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        io.atomic_save({"format": checkpoint.FORMAT, "step": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load_bundle(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_non_finite_loss_stops_with_clear_error_or_is_skipped(tmp_path, data_args):
    blow_up = [*data_args, *SMALL, "optim.lr=1e30", "optim.warmup_steps=0",
               "trainer.max_epochs=1"]
    proc = train(*blow_up, f"hydra.run.dir={tmp_path / 'stop'}", cwd=tmp_path)
    err = proc.stderr
    assert proc.returncode == 2
    assert "non-finite loss or gradient at step" in err and "Traceback" not in err
    assert logged_steps(tmp_path / "stop", "data/padding_fraction") == [0]  # flushed on error
    proc = train(*blow_up, "trainer.skip_nonfinite=true", f"hydra.run.dir={tmp_path / 'skip'}",
                 cwd=tmp_path)
    assert proc.returncode == 0
    assert json.loads((tmp_path / "skip" / "results.json").read_text())["skipped_batches"] > 0
