"""Every source's splits with their label names: carved validation, limits, optional test,
IMDB's ratings, and the encoded-split cache keyed on the source."""

import hashlib
import io
import json
import random
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from helpers import make_review, make_topic_rows, write_rows
from omegaconf import OmegaConf

from sentiment_lstm.config import DataConfig
from sentiment_lstm.data import corpus, sources, tokenizer
from sentiment_lstm.data.types import LABELS, DataError


def data_cfg(tmp_path: Path, **kw):
    return OmegaConf.merge(OmegaConf.structured(DataConfig),
                           {"cache_dir": str(tmp_path / "cache"), "min_frequency": 1, **kw})


def load(cfg):
    return corpus.load(sources.locate(cfg), val_fraction=cfg.val_fraction,
                       split_seed=cfg.split_seed, limit=cfg.limit, labels=cfg.labels)


def test_files_carve_a_stratified_seeded_validation_and_have_no_test(tmp_path):
    train = write_rows(tmp_path / "train.csv", make_topic_rows(40, classes=3))
    cfg = data_cfg(tmp_path, source="files", train=str(train), val_fraction=0.25)
    names, splits = load(cfg)
    assert names == ["food", "sport", "tech"] and set(splits) == {"train", "val"}
    assert Counter(splits["val"][1]) == {0: 10, 1: 10, 2: 10}
    assert len(splits["train"][0]) == 90 and load(cfg) == (names, splits)  # seeded
    names, limited = load(OmegaConf.merge(cfg, {"limit": 12}))
    assert Counter(limited["train"][1]) == {0: 4, 1: 4, 2: 4} and len(limited["val"][1]) == 12


def test_given_validation_and_test_files_are_used_as_they_are(tmp_path):
    rows = make_topic_rows(10, classes=3)
    cfg = data_cfg(tmp_path, source="files", labels=["tech", "sport", "food"],
                   train=str(write_rows(tmp_path / "t.tsv", rows, "tsv")),
                   validation=str(write_rows(tmp_path / "v.jsonl", rows[:5], "jsonl")),
                   test=str(write_rows(tmp_path / "x.csv", rows[5:9])))
    names, splits = load(cfg)
    assert names == ["tech", "sport", "food"]  # declared: their order
    assert splits["val"] == ([t for t, _ in rows[:5]], [names.index(y) for _, y in rows[:5]])
    assert [len(splits[s][0]) for s in ("train", "val", "test")] == [30, 5, 4]


def test_a_validation_label_training_never_saw_is_refused(tmp_path):
    cfg = data_cfg(tmp_path, source="files",
                   train=str(write_rows(tmp_path / "t.csv", make_topic_rows(5, classes=2))),
                   validation=str(write_rows(tmp_path / "v.csv", [("guitar solo", "music")])))
    with pytest.raises(DataError, match=r"v.csv: label 'music' in the validation split never "
                                        r"occurs in training \(labels: sport, tech\)"):
        load(cfg)


def ratings_tarball(path: Path, per_rating: int = 6) -> Path:
    rng = random.Random(0)
    with tarfile.open(path, "w:gz") as tf:
        for split in ("train", "test"):
            for rating in (1, 2, 3, 4, 7, 8, 9, 10):
                for i in range(per_rating):
                    text = make_review(int(rating > 5), rng).encode()
                    info = tarfile.TarInfo(f"aclImdb/{split}/{'pos' if rating > 5 else 'neg'}/"
                                           f"{rating * 100 + i}_{rating}.txt")
                    info.size = len(text)
                    tf.addfile(info, io.BytesIO(text))
    return path


def test_imdb_ratings_are_eight_classes_in_imdbs_order(tmp_path):
    tar = ratings_tarball(tmp_path / "r.tar.gz")
    names, splits = load(data_cfg(tmp_path, path=str(tar), imdb_label="rating"))
    assert names == ["1", "2", "3", "4", "7", "8", "9", "10"]
    sentiment = sources.read(sources.local_source(tar))
    assert splits["test"][0] == sentiment["test"][0]  # the same reviews, in the same order
    assert Counter(splits["test"][1]) == {k: 6 for k in range(8)}
    assert sources.locate(data_cfg(tmp_path, path=str(tar), imdb_label="rating")).fingerprint \
        != sources.locate(data_cfg(tmp_path, path=str(tar))).fingerprint


def test_imdb_sentiment_splits_and_cache_key_are_as_they_were(tiny_tarball, tmp_path):
    cfg = data_cfg(tmp_path, path=str(tiny_tarball))
    source = sources.locate(cfg)
    assert load(cfg) == (list(LABELS), sources.load_splits(source, 0.1, 0))
    keys = ("val_fraction", "split_seed", "limit", "tokenizer", "vocab_size", "min_frequency")
    blob = json.dumps([1, source.fingerprint, {k: str(cfg[k]) for k in keys}], sort_keys=True)
    assert tokenizer._cache_key(source, cfg) == hashlib.sha256(blob.encode()).hexdigest()[:16]


def test_the_cache_is_keyed_on_the_files_and_keeps_the_labels(tmp_path):
    train = write_rows(tmp_path / "t.csv", make_topic_rows(10, classes=3))
    cfg = data_cfg(tmp_path, source="files", train=str(train))
    _, splits, labels = tokenizer.prepare(cfg)
    assert labels == ["food", "sport", "tech"] and set(splits) == {"train", "val"}
    assert tokenizer.prepare(cfg)[2] == labels  # from the cache
    first = sources.locate(cfg).fingerprint
    write_rows(train, make_topic_rows(11, classes=3))
    assert sources.locate(cfg).fingerprint != first
    other = OmegaConf.merge(cfg, {"text_column": ["text", "text"]})
    assert sources.locate(other).fingerprint != sources.locate(cfg).fingerprint
