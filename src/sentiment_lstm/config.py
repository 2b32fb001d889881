"""Structured config schemas: Hydra checks every override against these types."""

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from sentiment_lstm.choices import (
    Encoder,
    FileFormat,
    ImdbLabel,
    Init,
    Kernel,
    LSTMVariant,
    Pooling,
    Precision,
    Source,
    TokenizerModel,
    Truncate,
)

STAMP_ENV = "SENTIMENT_LSTM_RUN_STAMP"  # rank 0's start time under torchrun (distributed.init)


@dataclass
class SyntheticConfig:
    """data.source=synthetic: a cue word decides the label, then `min_distance` to
    `max_distance` (uniform) distractor words follow; one sequence per line of the split."""
    reviews: int = 4000  # per split (train, test); validation is carved from train
    min_distance: int = 0
    max_distance: int = 400
    noise: float = 0.0  # share of distractors that are cue words of random sentiment


@dataclass
class HubSplits:
    """data=hub: which of the dataset's splits is which; null: none (validation is then
    carved from train; without a test split the run reports none)."""
    train: str = "train"
    validation: str | None = None
    test: str | None = None


@dataclass
class DataConfig:
    source: Source = Source.auto
    path: str | None = None  # aclImdb folder or tarball; else $SENTIMENT_LSTM_DATA
    hub_name: str | None = "stanfordnlp/imdb"  # IMDB's copy for source=hub (data=hub: null)
    url: str = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    cache_dir: str = "~/.cache/sentiment_lstm"
    val_fraction: float = 0.1
    split_seed: int = 0  # fixed apart from `seed`, so every model sees the same validation set
    limit: int | None = None  # keep this many reviews per split (balanced), for quick runs
    tokenizer: TokenizerModel = TokenizerModel.word
    vocab_size: int = 30000
    min_frequency: int = 2
    max_len: int = 1000
    truncate: Truncate = Truncate.head
    batch_size: int = 128
    pool_batches: int = 50  # batches per shuffle pool: sorted inside a pool to cut padding
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    imdb_label: ImdbLabel = ImdbLabel.sentiment
    # Labeled files (source=files) and any hub dataset (source=hub with a name):
    train: str | None = None  # files: one split per file
    validation: str | None = None
    test: str | None = None
    format: FileFormat = FileFormat.auto
    text_column: Any = "text"  # a column, or a list of them joined with a newline
    label_column: str = "label"
    labels: list[str] | None = None  # the label set in index order; null: training's, sorted
    name: str | None = None  # hub: a dataset name, a local dataset folder, or parquet|csv|json
    config: str | None = None  # hub: the dataset's configuration (GLUE's "sst2")
    data_files: Any = None  # hub: a builder's files, a path or {split: path}
    splits: HubSplits = field(default_factory=HubSplits)


@dataclass
class ModelConfig:
    encoder: Encoder = Encoder.lstm
    embed_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    embed_dropout: float = 0.3
    word_dropout: float = 0.0  # drops whole tokens' embeddings (Gal & Ghahramani 2016)
    recurrent_dropout: float = 0.0  # custom LSTM: DropConnect on W_hh (cells.LSTMLayer)
    pooling: Pooling = Pooling.max
    init: Init = Init.default
    kernel: Kernel = Kernel.auto  # the custom LSTM's path over time (model/cells.py LSTMLayer)
    variant: LSTMVariant = LSTMVariant.vanilla  # custom LSTM only: a gate ablation


@dataclass
class OptimConfig:
    lr: float = 3e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * min_lr_ratio
    # Adversarial training (Miyato et al. 2017): also fit each review with its embeddings
    # moved this far (L2 over the review) along the loss gradient; 0: off. Costs a second
    # forward and backward per step.
    adversarial: float = 0.0


@dataclass
class TrainerConfig:
    max_epochs: int = 6
    patience: int = 2  # epochs without a better val/acc before stopping
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    log_every: int = 20  # optimizer steps between train scalars
    progress: bool = True
    test: bool = True  # evaluate the best checkpoint on the test split at the end
    resume: str | None = None  # "auto" (newest unfinished run beside this one) or a run dir
    # On SIGUSR1 (a cluster's notice before the time limit or a preemption), after saving
    # last.ckpt: `scontrol requeue` this SLURM job; a run that starts with requeue=true
    # resumes its own run directory's last.ckpt when it has one.
    requeue: bool = False
    skip_nonfinite: bool = False  # skip a batch with a non-finite loss instead of stopping
    keep_epoch_checkpoints: bool = False  # also keep epochNNN.ckpt, not only best and last
    # A resumable last.ckpt also mid-epoch, so that a SIGKILL or a crash loses little: every
    # this many optimizer steps, and after this many wall minutes since the last save; 0: off.
    checkpoint_every_steps: int = 0
    checkpoint_every_minutes: float = 10.0
    precision: Precision = Precision.fp32
    reuse_memory: bool = True  # keep freed memory for reuse (glibc malloc): memory.py


# IMDB test reviews run from 8 to 2,675 word-level tokens (303 over 1,024): the long tail
IMDB_BUCKET_EDGES = [0, 128, 256, 384, 512, 768, 1024]


@dataclass
class EvalConfig:
    # null: IMDB's edges on IMDB, else edges from the training lengths (metrics.default_edges)
    bucket_edges: list[int] | None = None


@dataclass
class LossConfig:
    # null: unweighted; auto: n / (classes * count) from the training counts; or a list
    class_weights: Any = None


@dataclass
class DiagnosticsConfig:
    every: int = 0  # optimizer steps between probes (TensorBoard diag/...); 0: off
    reviews: int = 32  # the probe batch: the first validation reviews with >= `length` tokens
    length: int = 256


@dataclass
class Config:
    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    optim: OptimConfig = MISSING
    trainer: TrainerConfig = MISSING
    eval: EvalConfig = field(default_factory=EvalConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    seed: int = 0


def run_stamp(pattern: str) -> str:
    """The `${run_stamp:%Y-%m-%d_%H-%M-%S}` resolver of the output directories: the start
    time, rank 0's under torchrun, so that every rank resolves one directory per job."""
    return datetime.fromtimestamp(float(os.environ.get(STAMP_ENV, time.time()))).strftime(pattern)


def cores_per_job(n_jobs: int | str) -> int:
    """The `${cores_per_job:N}` resolver: this process's cores split between N parallel jobs
    (at least one each), for trainer.threads under a parallel launcher."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, int(n_jobs)))


def register() -> None:
    """The schema and the resolvers, for @hydra.main and for compose(); idempotent."""
    ConfigStore.instance().store(name="schema", node=Config)
    OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("cores_per_job", cores_per_job, replace=True)


# (key, test, rule) checked before any data is read; Hydra has already checked the types.
_RULES = [
    ("data.val_fraction", lambda v: 0 < v < 1, "must be in (0, 1)"),
    ("optim.adversarial", lambda v: v >= 0, "must be >= 0"),
    ("data.limit", lambda v: v is None or v > 0, "must be > 0 or null"),
    ("data.synthetic.reviews", lambda v: v >= 10, "must be >= 10"),
    ("data.synthetic.min_distance", lambda v: v >= 0, "must be >= 0"),
    ("data.vocab_size", lambda v: v > 2, "must be > 2"),
    ("data.min_frequency", lambda v: v >= 1, "must be >= 1"),
    ("data.max_len", lambda v: v > 0, "must be > 0"),
    ("data.batch_size", lambda v: v > 0, "must be > 0"),
    ("data.pool_batches", lambda v: v > 0, "must be > 0"),
    ("model.embed_dim", lambda v: v > 0, "must be > 0"),
    ("model.hidden_size", lambda v: v > 0, "must be > 0"),
    ("model.num_layers", lambda v: v > 0, "must be > 0"),
    ("model.dropout", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("model.embed_dropout", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("model.word_dropout", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("model.recurrent_dropout", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("optim.lr", lambda v: v > 0, "must be > 0"),
    ("optim.weight_decay", lambda v: v >= 0, "must be >= 0"),
    ("optim.grad_clip", lambda v: v > 0, "must be > 0"),
    ("optim.warmup_steps", lambda v: v >= 0, "must be >= 0"),
    ("optim.min_lr_ratio", lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    ("trainer.max_epochs", lambda v: v > 0, "must be > 0"),
    ("trainer.patience", lambda v: v > 0, "must be > 0"),
    ("trainer.threads", lambda v: v >= 0, "must be >= 0"),
    ("trainer.log_every", lambda v: v > 0, "must be > 0"),
    ("trainer.checkpoint_every_steps", lambda v: v >= 0, "must be >= 0 (0: off)"),
    ("trainer.checkpoint_every_minutes", lambda v: v >= 0, "must be >= 0 (0: off)"),
    ("diagnostics.every", lambda v: v >= 0, "must be >= 0 (0: off)"),
    ("diagnostics.reviews", lambda v: v > 0, "must be > 0"),
    ("diagnostics.length", lambda v: v > 0, "must be > 0"),
    (
        "eval.bucket_edges",
        lambda v: v is None or (len(v) > 0 and v[0] >= 0
                                and all(a < b for a, b in zip(v, v[1:]))),
        "must be non-negative and strictly increasing",
    ),
]


class ConfigError(ValueError):
    pass


def validate(cfg) -> None:
    """Raise ConfigError naming the first key whose value is out of range."""
    for key, ok, rule in _RULES:
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            raise ConfigError(f"{key}={value!r} {rule}")
    synthetic = cfg.data.synthetic
    if synthetic.min_distance > synthetic.max_distance:
        raise ConfigError(f"data.synthetic.min_distance={synthetic.min_distance} must be <= "
                          f"data.synthetic.max_distance={synthetic.max_distance}")
    if cfg.model.recurrent_dropout and cfg.model.encoder != "lstm":
        raise ConfigError(f"model.recurrent_dropout needs the custom LSTM (model=lstm), "
                          f"not model.encoder={cfg.model.encoder}")
    if cfg.model.variant != "vanilla" and cfg.model.encoder != "lstm":
        raise ConfigError(f"model.variant={cfg.model.variant} needs the custom LSTM (model=lstm), "
                          f"not model.encoder={cfg.model.encoder}")
    _check_data(cfg)
    device = cfg.trainer.device
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"trainer.device={device!r} must be auto, cpu, cuda or cuda:N")


def _check_data(cfg) -> None:
    d, weights = cfg.data, cfg.loss.class_weights
    if d.source == "hub" and d.name is None and d.hub_name is None:
        raise ConfigError("data=hub needs data.name=DATASET (a hub name, a local dataset "
                          "folder, or parquet|csv|json with data.data_files=...)")
    if d.source == "files" and not d.train:
        raise ConfigError("data=files needs data.train=PATH")
    cols = [d.text_column] if isinstance(d.text_column, str) else list(d.text_column)
    if not cols or not all(isinstance(c, str) and c for c in cols):
        raise ConfigError(f"data.text_column={d.text_column!r} must be a column or a list")
    if weights is not None and weights != "auto" and not (
            OmegaConf.is_list(weights) and all(
                isinstance(w, (int, float)) and w >= 0 for w in weights)):
        raise ConfigError(f"loss.class_weights={weights!r} must be null, auto or a list of "
                          "non-negative numbers, one per class")
