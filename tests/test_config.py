from pathlib import Path

import pytest
from helpers import CONFIGS, compose_config
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from sentiment_lstm.config import ConfigError, validate


def test_default_config_is_the_custom_lstm_on_imdb():
    cfg = compose_config()
    assert cfg.model.encoder == "lstm"
    assert cfg.data.source == "auto" and cfg.data.val_fraction == 0.1
    validate(cfg)


def test_model_groups_share_sizes_and_differ_in_encoder():
    lstm, rnn = compose_config(), compose_config("model=rnn")
    ref = compose_config("model=torch_lstm")
    assert (rnn.model.encoder, ref.model.encoder) == ("rnn", "torch_lstm")
    for other in (rnn, ref):
        assert {k: v for k, v in other.model.items() if k != "encoder"} == {
            k: v for k, v in lstm.model.items() if k != "encoder"}


def test_experiment_lstm_vs_rnn_sweeps_both_models():
    cfg = compose_config("experiment=lstm_vs_rnn", hydra=True)
    assert cfg.hydra.sweeper.params.model == "lstm,rnn"


EXPERIMENTS = Path(CONFIGS, "experiment")


@pytest.mark.parametrize("name", sorted(p.relative_to(EXPERIMENTS).with_suffix("").as_posix()
                                        for p in EXPERIMENTS.rglob("*.yaml")))
def test_every_experiment_composes_validates_and_sweeps_seeds(name):
    cfg = compose_config(f"experiment={name}", hydra=True)
    validate(cfg)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert cfg.hydra.sweeper.params.seed == "0,1,2"
    assert cfg.hydra.sweep.dir.endswith(f"_{Path(name).name}")


def test_overrides_are_typed():
    cfg = compose_config("model.hidden_size=96", "eval.bucket_edges=[0,50,100]", "data.limit=10")
    assert cfg.model.hidden_size == 96 and cfg.data.limit == 10
    assert list(cfg.eval.bucket_edges) == [0, 50, 100]
    with pytest.raises(ConfigCompositionException, match="hidden_size"):
        compose_config("model.hidden_size=big")
    with pytest.raises(ConfigCompositionException, match="colour"):
        compose_config("model.colour=red")
    with pytest.raises(ConfigCompositionException, match="pooling"):
        compose_config("model.pooling=median")


@pytest.mark.parametrize("override, key", [
    ("model.hidden_size=-1", "model.hidden_size"),
    ("model.dropout=1.0", "model.dropout"),
    ("model.word_dropout=-0.1", "model.word_dropout"),
    ("model.recurrent_dropout=1", "model.recurrent_dropout"),
    ("model=rnn model.recurrent_dropout=0.2", "model.recurrent_dropout"),
    ("optim.lr=0", "optim.lr"),
    ("optim.adversarial=-1", "optim.adversarial"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.val_fraction=1.5", "data.val_fraction"),
    ("eval.bucket_edges=[0,256,128]", "eval.bucket_edges"),
    ("trainer.device=tpu", "trainer.device"),
])
def test_out_of_range_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(compose_config(*override.split()))


def test_yaml_files_carry_no_unknown_keys():
    for group in ("data/imdb", "model/lstm", "optim/adamw", "trainer/default"):
        keys = set(OmegaConf.load(f"{CONFIGS}/{group}.yaml")) - {"defaults"}
        section = group.split("/")[0]
        assert keys <= set(compose_config()[section]), group


@pytest.mark.parametrize("name", ["gate_ablation", "gate_ablation_synthetic"])
def test_gate_ablation_sweeps_every_variant_and_rnn_once_per_seed(name):
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = compose_config(f"experiment={name}", hydra=True)
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    (jobs,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
    assert len(jobs) == 10 * 3
    runs = set()
    for job in jobs:
        run = compose_config(f"experiment={name}", *job)
        validate(run)
        runs.add((str(run.model.encoder), str(run.model.variant), run.seed))
        assert run.trainer.threads == 1 and run.model.hidden_size == (64 if name ==
                                                                        "gate_ablation" else 32)
    assert {(e, v) for e, v, _ in runs} == {("rnn", "vanilla")} | {
        ("lstm", p.stem) for p in Path(CONFIGS, "ablation").glob("*.yaml") if p.stem != "rnn"}
    assert len(runs) == 30 and len({v for _, v, _ in runs}) == 9
    subdir = OmegaConf.to_container(cfg.hydra.sweep)["subdir"]  # unresolved: no job yet
    assert subdir == "${hydra.job.num}_${model.encoder}_${model.variant}_s${seed}"


def test_variant_needs_the_custom_lstm():
    assert compose_config().model.variant == "vanilla"
    validate(compose_config("model.variant=forget_only"))
    with pytest.raises(ConfigError, match=r"model\.variant=coupled needs the custom LSTM"):
        validate(compose_config("model=rnn", "model.variant=coupled"))
    with pytest.raises(ConfigCompositionException, match="variant"):
        compose_config("model.variant=peephole")
