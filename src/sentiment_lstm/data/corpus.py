"""Any source's labeled splits: train, validation (given, or carved from train: stratified,
seeded) and test (only when the source has one), with the run's label names."""

import json
from pathlib import Path

from sentiment_lstm.data import files, hub, sources
from sentiment_lstm.data.labels import encode_splits, indices_in
from sentiment_lstm.data.types import LABELS, DataError, RawTexts, Texts
from sentiment_lstm.io import InputError

SPLITS = ("train", "validation", "test")


def _read(source: sources.Source) -> tuple[dict[str, RawTexts], list | None, dict[str, str]]:
    """The raw splits, the label names the source declares (None: take them from training)
    and, per split, where it came from (for messages)."""
    if source.kind == "files":
        spec = json.loads(source.location)
        raw = {s: files.read_split(spec[s], spec["format"], spec["text_column"],
                                   spec["label_column"]) for s in SPLITS if spec[s]}
        return raw, None, {s: str(spec[s]) for s in raw}
    if source.kind == "dataset":
        spec = json.loads(source.location)
        raw, declared = hub.read(spec, sources._resolves)
        if "train" not in raw:
            raise DataError(f"dataset {spec['name']!r}: data.splits.train must name a split")
        return raw, declared, {s: f"dataset {spec['name']!r} split {spec['splits'][s]!r}"
                               for s in raw}
    raw = sources.read_ratings(source)
    return raw, None, {s: f"{source.location} ({s})" for s in raw}


def load(source: sources.Source, *, val_fraction: float, split_seed: int,
         limit: int | None = None, labels: list | None = None
         ) -> tuple[list[str], dict[str, Texts]]:
    """(label names, {"train", "val"[, "test"]}), each split cut to `limit` if given
    (stratified). IMDB's sentiment splits are sources.load_splits' exactly."""
    if source.kind in ("local", "hub", "synthetic"):
        return list(LABELS), sources.load_splits(source, val_fraction, split_seed, limit)
    raw, declared, where = _read(source)
    names, enc = encode_splits(raw, labels if labels is not None else declared, where)
    if "validation" in enc:
        splits = {"train": enc["train"], "val": enc["validation"]}
    else:
        train_idx, val_idx = sources.stratified_split(enc["train"][1], val_fraction, split_seed)
        splits = {"train": sources._take(enc["train"], train_idx),
                  "val": sources._take(enc["train"], val_idx)}
        if len(set(splits["train"][1])) < 2 or not val_idx:
            raise DataError(f"{where['train']}: too few rows to carve a validation split "
                            f"(data.val_fraction={val_fraction}); give data.validation=PATH")
    if "test" in enc:
        splits["test"] = enc["test"]
    return names, sources.cut_to_limit(splits, limit, split_seed)


def imdb_split(path: Path, d: dict, split: str) -> tuple[list[str], list[int]]:
    """An IMDB split with the run's labels (sentiment or rating); validation as carved from
    train by the run."""
    source = sources.local_source(path)
    limit = d.get("limit") if split == "val" else None
    if d.get("imdb_label") == "rating":
        source = sources.Source("imdb_ratings", source.location, "rating:" + source.fingerprint)
        return load(source, val_fraction=d["val_fraction"], split_seed=d["split_seed"],
                           limit=limit)[1][split]
    return sources.load_splits(source, d["val_fraction"], d["split_seed"], limit)[split]


def read_labeled(file: str | Path, labels: list[str], text_column="text", label_column="label",
                 fmt: str = "auto") -> tuple[list[str], list[int]]:
    """(texts, label indices) of a labeled file scored against a run's label names, read as
    training reads its files (rows with an empty text dropped)."""
    texts, raw = files.read_split(file, fmt, text_column, label_column,
                                  "pass --text-column / --label-column")
    return texts, indices_in(raw, labels, str(file))


def evaluation_texts(d: dict, labels: list[str], file: str | None, split: str,
                     imdb_path: str | None, text_column: list[str] | None,
                     label_column: str | None) -> tuple[list[str], list[int], str]:
    """(texts, labels, what they are) that `evaluate` scores for a run whose data config is
    `d`: a labeled file, else the run's own test file, else an IMDB split."""
    own_data = d.get("source") == "files" or (d.get("source") == "hub" and d.get("name"))
    fmt = "auto"
    if not file and own_data:
        if d.get("source") != "files" or not d.get("test") or split == "val":
            raise InputError("this checkpoint was not trained on IMDB: pass --file "
                             "labeled.csv|.tsv|.jsonl")
        file, fmt = d["test"], d.get("format", "auto")  # the run's own test file, read as then
    if file:
        return (*read_labeled(file, labels, text_column or d.get("text_column", "text"),
                              label_column or d.get("label_column", "label"), fmt), file)
    if not imdb_path:
        raise InputError(f"the IMDB {split} split needs --data-path or ${sources.ENV_PATH}")
    return *imdb_split(Path(imdb_path), d, split), f"imdb/{split}"
