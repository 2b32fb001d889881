"""What several test modules share: generated reviews and tarballs, the composed config, the
CLI as a subprocess, the TensorBoard scalars of a run."""

import io
import random
import subprocess
import sys
import tarfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import sentiment_lstm
from sentiment_lstm.config import register

ROOT = Path(__file__).resolve().parents[1]
REAL_TARBALL = ROOT.parent / "shared" / "data" / "aclImdb_v1_labeled.tar.gz"

POSITIVE = ["great", "wonderful", "superb", "loved", "excellent"]
NEGATIVE = ["awful", "terrible", "boring", "hated", "worst"]
FILLER = ["the", "movie", "plot", "actor", "scene", "and", "a", "was", "film", "it"]


def make_review(label: int, rng: random.Random, words: int = 30) -> str:
    cue = POSITIVE if label else NEGATIVE
    body = [rng.choice(FILLER) for _ in range(words)]
    for _ in range(3):
        body.insert(rng.randrange(len(body)), rng.choice(cue))
    return " ".join(body).capitalize() + ".<br /><br />The End"


def make_tarball(path: Path, per_label: int = 20, seed: int = 0) -> Path:
    """A tiny aclImdb_v1.tar.gz look-alike with generated reviews (no real review text)."""
    rng = random.Random(seed)
    with tarfile.open(path, "w:gz") as tf:
        for split in ("train", "test"):
            for label, name in ((0, "neg"), (1, "pos")):
                for i in range(per_label):
                    text = make_review(label, rng, words=rng.randint(5, 60)).encode()
                    info = tarfile.TarInfo(f"aclImdb/{split}/{name}/{i}_{8 if label else 2}.txt")
                    info.size = len(text)
                    tf.addfile(info, io.BytesIO(text))
    return path


CONFIGS = str(Path(sentiment_lstm.__file__).parent / "configs")

# A model and run small enough for seconds-long end-to-end tests.
TINY = ["model.embed_dim=16", "model.hidden_size=16", "data.max_len=96", "data.batch_size=32",
        "trainer.max_epochs=2", "trainer.progress=false", "data.vocab_size=2000",
        "trainer.log_every=4"]


def compose_config(*overrides: str, hydra: bool = False) -> DictConfig:
    """The package's real config with `overrides`, as the CLI would compose it."""
    register()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def run_cli(*args: str, cwd: Path, module: str = "train",
            stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"sentiment_lstm.{module}", *args], cwd=cwd,
                          input=stdin, capture_output=True, text=True, timeout=600)


def scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar tag of a run's one event file, its values in step order."""
    (events,) = run_dir.glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return {t: [e.value for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def make_checkpoint(path: Path, encoder: str = "lstm", max_len: int = 64, seed: int = 0,
                    **model_args) -> Path:
    """An untrained checkpoint with a tokenizer built on generated reviews, for tests that
    need a model but not a trained one."""
    import torch

    from sentiment_lstm.checkpoint import FORMAT
    from sentiment_lstm.data.tokenizer import build_tokenizer
    from sentiment_lstm.model.classifier import SentimentClassifier

    rng = random.Random(seed)
    tok = build_tokenizer([make_review(i % 2, rng) for i in range(40)], min_frequency=1)
    torch.manual_seed(seed)
    args = {"vocab_size": tok.get_vocab_size(), "embed_dim": 8, "hidden_size": 12,
            "encoder": encoder, **model_args}
    model = SentimentClassifier(**args)
    torch.save({"format": FORMAT, "model_args": args, "state_dict": model.state_dict(),
                "tokenizer": tok.to_str(), "labels": ["neg", "pos"],
                "data": {"max_len": max_len, "truncate": "head"}, "config": {"seed": seed}},
               path)
    return path


TOPICS = {"sport": ["goal", "match", "coach", "league", "striker"],
          "tech": ["laptop", "software", "chip", "server", "code"],
          "food": ["recipe", "spicy", "bake", "flavour", "dinner"],
          "travel": ["flight", "hotel", "beach", "passport", "tour"],
          "music": ["guitar", "album", "chorus", "drummer", "concert"]}


def make_topic_rows(per_class: int, classes: int = 4, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) rows of generated text whose label is learnable: each text holds three
    cue words of its topic among 4-40 filler words. Shuffled."""
    rng = random.Random(seed)
    rows = []
    for label in list(TOPICS)[:classes]:
        for _ in range(per_class):
            body = [rng.choice(FILLER) for _ in range(rng.randint(4, 40))]
            for _ in range(3):
                body.insert(rng.randrange(len(body)), rng.choice(TOPICS[label]))
            rows.append((" ".join(body), label))
    rng.shuffle(rows)
    return rows


def write_rows(path: Path, rows: list[tuple[str, str]], fmt: str = "csv") -> Path:
    """rows as a CSV / TSV with a text,label header, or as JSONL."""
    import csv
    import json

    with open(path, "w", newline="", encoding="utf-8") as f:
        if fmt == "jsonl":
            f.writelines(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows)
        else:
            w = csv.writer(f, delimiter="\t" if fmt == "tsv" else ",",
                           quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL)
            w.writerow(["text", "label"])
            w.writerows(rows)
    return path


def tarball_args(folder: Path, per_label: int) -> list[str]:
    """Overrides that train on a fresh make_tarball in `folder`, with its own cache."""
    tarball = make_tarball(folder / "imdb.tar.gz", per_label=per_label)
    return [f"data.path={tarball}", f"data.cache_dir={folder / 'cache'}"]
