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
