"""The command line's overrides checked before Hydra runs: one line naming the key."""

import pytest
from helpers import run_cli

from sentiment_lstm.config import ConfigError
from sentiment_lstm.overrides import check, expected_type


@pytest.mark.parametrize("argv, message", [
    ("model.hiddn_size=3", "model.hiddn_size: no such key; did you mean model.hidden_size?"),
    ("mdoel.hidden_size=3", "mdoel.hidden_size: no such key; did you mean model.hidden_size?"),
    ("sed=1", "sed: no such key; did you mean seed?"),
    ("+model.hiddn_size=3", "model.hiddn_size: no such key; did you mean model.hidden_size?"),
    ("hydra.run.dirr=x", "hydra.run.dirr: no such key; did you mean hydra.run.dir?"),
    ("trainer.max_epochs=abc", "trainer.max_epochs=abc: expected an integer"),
    ("data.limit=abc", "data.limit=abc: expected an integer or null"),
    ("model.bidirectional=maybe", "model.bidirectional=maybe: expected true or false"),
    ("model.pooling=median", "model.pooling=median: expected one of last, max, mean, max_mean"),
    ("eval.bucket_edges=abc", "eval.bucket_edges=abc: expected a list of integers"),
    ("model=lstmm", "model=lstmm: no such option; model has lstm, rnn, torch_lstm; did you "
                    "mean lstm?"),
    ("model.hidden_size=[1", "cannot parse the override 'model.hidden_size=[1'"),
    ("seed=0,1", "seed=0,1: a sweep needs -m"),
    ("-m seed=0,1 model=lstm,rnnn", "model=rnnn: no such option; model has lstm, rnn"),
    ("--cfg job model.hiddn_size=3", "model.hiddn_size: no such key; did you mean"),
])
def test_a_bad_override_is_one_line_naming_the_key(argv, message):
    with pytest.raises(ConfigError) as e:
        check(argv.split())
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


@pytest.mark.parametrize("argv", [
    "", "model=rnn trainer.max_epochs=3 data.limit=null", "-m model=lstm,rnn seed=0,1,2",
    "experiment=best_lstm", "experiment=best_lstm seed=0,1",  # the experiment sweeps itself
    "-m seed=range(0,3)", "--cfg job", "--help", "hydra/job_logging=stdout",
    "hydra.job_logging.root.level=WARNING hydra.output_subdir=null", "++model.hidden_size=3",
    "trainer.checkpoint_every_steps=100",
])
def test_good_command_lines_pass(argv):
    check(argv.split())


def test_expected_type_reads_the_schema():
    assert expected_type("trainer.checkpoint_every_minutes") == "a number"
    assert expected_type("data.path") == "a string or null"
    assert expected_type("data.truncate") == "one of head, tail, head_tail, none"
    assert expected_type("hydra.run.dir") is None  # Hydra's own schema


@pytest.mark.parametrize("override, message", [
    ("model.hiddn_size=3", "error: model.hiddn_size: no such key; did you mean "
                           "model.hidden_size?"),
    ("trainer.max_epochs=abc", "error: trainer.max_epochs=abc: expected an integer"),
    ("model=lstmm", "error: model=lstmm: no such option; model has lstm, rnn, torch_lstm"),
])
def test_the_train_cli_prints_one_error_line_and_exits_2(tmp_path, override, message):
    proc = run_cli(override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "run").exists()


def test_hydra_flags_still_work(tmp_path):
    proc = run_cli("--cfg", "job", "model=rnn", cwd=tmp_path)
    assert proc.returncode == 0 and "encoder: rnn" in proc.stdout, proc.stderr
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "model: lstm, rnn, torch_lstm" in proc.stdout, proc.stderr
