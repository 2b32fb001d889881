"""Build, save and load a `tokenizers` tokenizer; encode the splits once and cache them."""

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from torch import Tensor

from sentiment_lstm.data import corpus, sources
from sentiment_lstm.io import atomic_save, first_line

PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1
CACHE_VERSION = 1
log = logging.getLogger(__name__)


@dataclass
class EncodedSplit:
    ids: Tensor  # (N_tokens,) int32, every review's token ids back to back
    offsets: Tensor  # (N + 1,) int64, review i is ids[offsets[i]:offsets[i + 1]]
    labels: Tensor  # (N,) int64

    @property
    def lengths(self) -> Tensor:  # (N,) token count before any truncation
        return self.offsets[1:] - self.offsets[:-1]

    def __len__(self) -> int:
        return len(self.labels)


def build_tokenizer(texts: list[str], *, model: str = "word", vocab_size: int = 30000,
                    min_frequency: int = 2) -> Tokenizer:
    """Train on `texts`: strip <br /> markup, lowercase, split words and punctuation."""
    if model == "word":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD, UNK])
    else:
        tok = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD, UNK])
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(r"<br\s*/?>"), " "), normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def encode(tok: Tokenizer, texts: list[str], labels: list[int] | None = None) -> EncodedSplit:
    ids = [e.ids for e in tok.encode_batch_fast(texts)]  # skips character offsets
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    y = torch.tensor(labels if labels is not None else [-1] * len(texts), dtype=torch.int64)
    return EncodedSplit(torch.from_numpy(flat), torch.from_numpy(offsets), y)


def _cache_key(source: sources.Source, cfg) -> str:
    keys = ("val_fraction", "split_seed", "limit", "tokenizer", "vocab_size", "min_frequency")
    settings = {k: str(cfg[k]) for k in keys}
    if cfg.get("labels") is not None:  # only when set, so IMDB's keys stay as they were
        settings["labels"] = str(list(cfg.labels))
    blob = json.dumps([CACHE_VERSION, source.fingerprint, settings], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare(cfg) -> tuple[Tokenizer, dict[str, EncodedSplit], list[str]]:
    """Tokenizer, encoded train/val[/test] and the label names for a DataConfig, from the
    cache when it has them."""
    source = sources.locate(cfg)
    path = Path(cfg.cache_dir).expanduser() / f"encoded-{_cache_key(source, cfg)}.pt"
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True)
            log.info("encoded splits from cache %s", path)
            return Tokenizer.from_str(blob["tokenizer"]), {
                name: EncodedSplit(**tensors) for name, tensors in blob["splits"].items()
            }, blob.get("labels", list(sources.LABELS))
        except Exception as e:  # a damaged cache is rebuilt, never trusted
            log.warning("rebuilding the encoded-split cache %s: unreadable (%s)", path,
                        _one_line(e))
    start = time.perf_counter()
    labels, texts = corpus.load(source, val_fraction=cfg.val_fraction, split_seed=cfg.split_seed,
                                limit=cfg.limit, labels=cfg.get("labels"))
    log.info("read %s in %.1fs", source.location, time.perf_counter() - start)
    tok = build_tokenizer(texts["train"][0], model=cfg.tokenizer, vocab_size=cfg.vocab_size,
                          min_frequency=cfg.min_frequency)
    splits = {name: encode(tok, *pair) for name, pair in texts.items()}
    log.info("read and tokenized in %.1fs (vocab %d)", time.perf_counter() - start,
             tok.get_vocab_size())
    atomic_save({"tokenizer": tok.to_str(), "labels": labels,
                 "splits": {n: vars(s) for n, s in splits.items()}}, path)
    return tok, splits, labels


def _one_line(e: BaseException) -> str:
    """An exception as one short line: torch.load's messages run to many lines."""
    first = first_line(e)
    text = type(e).__name__ if first == type(e).__name__ else f"{type(e).__name__}: {first}"
    return text if len(text) <= 200 else text[:197] + "..."
