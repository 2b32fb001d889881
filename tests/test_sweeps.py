"""Sweeps through the real CLI: an Optuna study that records failed trials and resumes from
its storage, and jobs launched by submitit in processes of their own."""

import json
import os

import optuna
import pytest
from helpers import run_cli, tarball_args

FAST = ["model.embed_dim=16", "data.max_len=64", "trainer.max_epochs=1", "data.vocab_size=500",
        "trainer.progress=false", "trainer.threads=1", "data.min_frequency=1"]


@pytest.fixture(scope="module")
def data_args(tmp_path_factory) -> list[str]:
    return tarball_args(tmp_path_factory.mktemp("data"), per_label=20)


def test_optuna_study_records_failed_trials_and_continues_from_its_storage(tmp_path,
                                                                            data_args):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # batch size 0 is refused by the config check: those trials must fail, the rest complete
    args = ["hparams_search=lstm_optuna", *data_args, *FAST, f"hydra.sweeper.storage={storage}",
            "data.batch_size=choice(16,0)", "model.hidden_size=choice(8,16)",
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    first = run_cli(*args, "hydra.sweeper.n_trials=3", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "error: data.batch_size=0 must be > 0" in first.stderr
    trials = optuna.load_study(study_name="lstm_optuna", storage=storage).trials
    states = [t.state for t in trials]
    assert len(trials) == 3 and optuna.trial.TrialState.FAIL in states
    for t in trials:
        failed = t.state == optuna.trial.TrialState.FAIL
        assert (t.params["data.batch_size"] == 0) == failed, (t.params, t.state)
        assert failed or 0 <= t.value <= 1
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for t in done:  # the study's value is the run's best val/acc; test is never scored
        results = json.loads(next((tmp_path / "sweep").glob(f"{t.number}_*/results.json"))
                             .read_text())
        assert results["val"]["acc"] == t.value and "test" not in results

    again = run_cli(*args[:-1], f"hydra.sweep.dir={tmp_path / 'sweep2'}",
                    "hydra.sweeper.n_trials=2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(optuna.load_study(study_name="lstm_optuna", storage=storage).trials) == 5


def test_submitit_local_runs_each_job_in_its_own_process(tmp_path, data_args):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "hydra/launcher=local", "seed=0,1", *data_args, *FAST,
                   "model.hidden_size=8", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seeds = sorted(json.loads(p.read_text())["seed"] for p in sweep.glob("*/results.json"))
    assert seeds == [0, 1]
    assert list((sweep / ".submitit").rglob("*_log.out"))  # submitit ran them, logging there


def test_parallel_launcher_splits_the_cores_between_jobs(tmp_path):
    proc = run_cli("hydra/launcher=parallel", "hydra.launcher.n_jobs=2",
                   "trainer.threads=${cores_per_job:2}", "--cfg", "job", "--resolve",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cores = len(os.sched_getaffinity(0))
    assert f"threads: {max(1, cores // 2)}\n" in proc.stdout
