from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import sentiment_lstm
import sentiment_lstm.train  # noqa: F401  registers the schema
from sentiment_lstm.config import ConfigError, validate

CONFIGS = str(Path(sentiment_lstm.__file__).parent / "configs")


def cfg_of(*overrides: str):
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_default_config_is_the_custom_lstm_on_imdb():
    cfg = cfg_of()
    assert cfg.model.encoder == "lstm"
    assert cfg.data.source == "auto" and cfg.data.val_fraction == 0.1
    validate(cfg)


def test_model_groups_share_sizes_and_differ_in_encoder():
    lstm, rnn, ref = cfg_of(), cfg_of("model=rnn"), cfg_of("model=torch_lstm")
    assert (rnn.model.encoder, ref.model.encoder) == ("rnn", "torch_lstm")
    for other in (rnn, ref):
        assert {k: v for k, v in other.model.items() if k != "encoder"} == {
            k: v for k, v in lstm.model.items() if k != "encoder"}


def test_experiment_lstm_vs_rnn_sweeps_both_models():
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=["experiment=lstm_vs_rnn"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params.model == "lstm,rnn"


@pytest.mark.parametrize("name", sorted(p.stem for p in Path(CONFIGS, "experiment").glob("*.yaml")))
def test_every_experiment_composes_validates_and_sweeps_seeds(name):
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={name}"], return_hydra_config=True)
    validate(cfg)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert cfg.hydra.sweeper.params.seed == "0,1,2"
    assert cfg.hydra.sweep.dir.endswith(f"_{name}")


def test_overrides_are_typed():
    cfg = cfg_of("model.hidden_size=96", "eval.bucket_edges=[0,50,100]", "data.limit=10")
    assert cfg.model.hidden_size == 96 and cfg.data.limit == 10
    assert list(cfg.eval.bucket_edges) == [0, 50, 100]
    with pytest.raises(ConfigCompositionException, match="hidden_size"):
        cfg_of("model.hidden_size=big")
    with pytest.raises(ConfigCompositionException, match="colour"):
        cfg_of("model.colour=red")
    with pytest.raises(ConfigCompositionException, match="pooling"):
        cfg_of("model.pooling=median")


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
        validate(cfg_of(*override.split()))


def test_yaml_files_carry_no_unknown_keys():
    for group in ("data/imdb", "model/lstm", "optim/adamw", "trainer/default"):
        keys = set(OmegaConf.load(f"{CONFIGS}/{group}.yaml")) - {"defaults"}
        section = group.split("/")[0]
        assert keys <= set(cfg_of()[section]), group
