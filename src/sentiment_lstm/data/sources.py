"""Where the data is (IMDB's aclImdb folder or tarball, the hub, the official download;
labeled files; any hub dataset) and IMDB's reader and splits."""

import json
import lzma
import os
import re
import socket
import tarfile
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sentiment_lstm.data.synthetic import synthetic_long
from sentiment_lstm.data.types import LABELS, DataError, Texts
from sentiment_lstm.io import first_line

ENV_PATH = "SENTIMENT_LSTM_DATA"
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


@dataclass(frozen=True)
class Source:
    kind: str  # "local" (IMDB folder or tarball), "hub", "synthetic", "imdb_ratings",
    # "files" or "dataset" (any hub dataset); the last two hold a JSON spec as location
    location: str
    fingerprint: str  # cheap identity of the data, for the encoding cache


def _file_fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def local_source(path: Path) -> Source:
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    if path.is_dir() and (path / "aclImdb").is_dir():
        path = path / "aclImdb"
    if path.is_dir():
        parts = [path / s / c for s in ("train", "test") for c in LABELS]
        missing = [f"{s}/" if not (path / s).is_dir() else f"{s}/{c}"
                   for s in ("train", "test") for c in LABELS if not (path / s / c).is_dir()]
        if missing:
            raise DataError(f"{path} is not an aclImdb folder: it has no "
                            f"{', '.join(dict.fromkeys(missing))}")
        return Source("local", str(path), "dir:" + ";".join(_file_fingerprint(p) for p in parts))
    return Source("local", str(path), "tar:" + _file_fingerprint(path))


def _offline() -> bool:
    return any(os.environ.get(v, "0") not in ("", "0") for v in
               ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _resolves(url: str) -> bool:
    """True if the URL's host has an address: a fast offline check before any retrying client."""
    host = urllib.parse.urlparse(url).hostname
    if host is None:
        return True  # a local path given as the hub name or URL
    try:
        socket.getaddrinfo(host, None)
        return True
    except OSError:
        return False


def _downloaded_copy(cfg) -> Path:
    name = Path(urllib.parse.urlparse(cfg.url).path).name or "aclImdb_v1.tar.gz"
    return Path(cfg.cache_dir).expanduser() / name


def is_imdb(cfg) -> bool:
    """Whether cfg.source reads IMDB (sentiment or ratings), whose length buckets are fixed."""
    return cfg.source in ("auto", "local", "download") or (cfg.source == "hub" and
                                                          cfg.name is None)


def _spec(cfg, *keys: str) -> dict:
    from omegaconf import OmegaConf  # the spec is plain data: JSON in the Source

    return {k: OmegaConf.to_container(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k]
            for k in keys}


def _files_source(cfg) -> Source:
    if not cfg.train:
        raise DataError("data.source=files needs data.train=PATH (and optionally "
                        "data.validation=PATH, data.test=PATH)")
    spec = _spec(cfg, "train", "validation", "test", "text_column", "label_column")
    spec["format"] = str(cfg.format)
    prints = [_file_fingerprint(Path(p).expanduser()) if Path(p).expanduser().is_file() else p
              for p in (cfg.train, cfg.validation, cfg.test) if p]
    blob = json.dumps(spec, sort_keys=True)
    return Source("files", blob, f"files:{blob}:{';'.join(prints)}")


def _dataset_source(cfg) -> Source:
    spec = _spec(cfg, "name", "config", "data_files", "splits", "text_column", "label_column")
    files = spec["data_files"] or {}
    prints = [_file_fingerprint(Path(p)) for p in
              (files.values() if isinstance(files, dict) else [files]) if Path(p).is_file()]
    blob = json.dumps(spec, sort_keys=True)
    return Source("dataset", blob, f"dataset:{blob}:{';'.join(prints)}")


def locate(cfg) -> Source:
    """Find the data named by cfg.source without reading it (downloading it if asked to)."""
    if cfg.source == "files":
        return _files_source(cfg)
    if cfg.source == "hub" and cfg.name is not None:
        return _dataset_source(cfg)
    source = _locate_imdb(cfg)
    if cfg.imdb_label == "rating":  # the same reviews, another label: another cache entry
        return Source("imdb_ratings", source.location, "rating:" + source.fingerprint)
    return source


def _locate_imdb(cfg) -> Source:
    if cfg.source == "synthetic":
        spec = json.dumps({**cfg.synthetic, "seed": cfg.split_seed}, sort_keys=True)
        return Source("synthetic", spec, f"synthetic:{spec}")
    path = cfg.path or os.environ.get(ENV_PATH)
    if cfg.source == "local" or (cfg.source == "auto" and path):
        if not path:
            raise DataError(f"data.source=local needs data.path=... or ${ENV_PATH}")
        return local_source(Path(path).expanduser())
    if cfg.source == "hub":
        return Source("hub", cfg.hub_name, f"hub:{cfg.hub_name}")
    if cfg.source == "download":
        return local_source(download(cfg.url, _downloaded_copy(cfg)))
    # auto: an earlier download, then the hub, then the official tarball.
    if _downloaded_copy(cfg).exists():
        return local_source(_downloaded_copy(cfg))
    if not _offline() and _resolves(f"https://huggingface.co/{cfg.hub_name}"):
        return Source("hub", cfg.hub_name, f"hub:{cfg.hub_name}")
    if not _offline() and _resolves(cfg.url):
        return local_source(download(cfg.url, _downloaded_copy(cfg)))
    raise DataError(
        "no IMDB data found and no network: pass data.path=/path/to/aclImdb_v1.tar.gz "
        f"(or an aclImdb folder), or set ${ENV_PATH}"
    )


def download(url: str, dest: Path) -> Path:
    """Download url to dest with a progress bar; a partial file never takes dest's name."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except OSError as e:
        part.unlink(missing_ok=True)
        raise DataError(f"could not download {url}: {e}") from e
    os.replace(part, dest)
    return dest


def read(source: Source) -> dict[str, Texts]:
    """All labeled reviews of the source as {"train": ..., "test": ...}, in a fixed order."""
    if source.kind == "hub":
        return _read_hub(source.location)
    if source.kind == "synthetic":
        return synthetic_long(**json.loads(source.location))
    return {s: (texts, [r[1] for r in rows]) for s, (texts, rows) in _imdb(source).items()}


def read_ratings(source: Source) -> dict[str, tuple[list[str], list[int]]]:
    """IMDB's reviews in read()'s order with their star rating (1-4, 7-10) as the label."""
    return {s: (texts, [r[4] for r in rows]) for s, (texts, rows) in _imdb(source).items()}


def _imdb(source: Source) -> dict[str, tuple[list[str], list[tuple]]]:
    path = Path(source.location)
    rows = _read_folder(path) if path.is_dir() else _read_tarball(path)
    out = {}
    for split in ("train", "test"):
        picked = sorted(r for r in rows if r[0] == split)  # (split, label, id, text, rating)
        if {r[1] for r in picked} != {0, 1}:
            raise DataError(f"{path}: no {split} reviews of both labels in aclImdb/{split}/pos|neg")
        out[split] = ([r[3] for r in picked], picked)
    return out


def _row(name: str, raw: bytes) -> tuple | None:
    m = _MEMBER.search(name)
    if m is None:
        return None
    split, label, review_id, rating = m.groups()
    # (split, label, id) is unique, so sorting rows never compares the text or the rating
    return (split, LABELS.index(label), int(review_id), raw.decode("utf-8", errors="replace"),
            int(rating))


# The compressions tarfile reads, by the magic bytes a file starts with.
_MAGIC = ((b"\x1f\x8b", "gz", "gzip"), (b"BZh", "bz2", "bzip2"), (b"\xfd7zXZ\x00", "xz", "xz"))


def _read_tarball(path: Path) -> list[tuple]:
    """The aclImdb members of a (compressed) tar file. Its first bytes pick the one
    decompressor to try, so that a bad file gets one reason, not one per decompressor."""
    with open(path, "rb") as f:
        head = f.read(6)
    mode, kind = next(((m, k) for magic, m, k in _MAGIC if head.startswith(magic)), ("", ""))
    rows = []
    try:
        with tarfile.open(path, f"r:{mode}") as tf:
            for member in tf:
                if member.isfile() and _MEMBER.search(member.name):
                    rows.append(_row(member.name, tf.extractfile(member).read()))
            # tarfile stops quietly at a cut-off header: a whole tar ends with zero blocks
            if not mode and path.stat().st_size - tf.offset < tarfile.BLOCKSIZE:
                raise EOFError("no end-of-archive block")
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as e:
        raise DataError(f"{path} is not a readable aclImdb tarball: "
                        f"{_tar_reason(e, kind, len(head))}") from e
    return rows


def _tar_reason(e: BaseException, kind: str, head: int) -> str:
    """Why tarfile failed, in words: tarfile's own messages name a decompressor it tried."""
    text = f"{e} {e.__cause__ or ''}".lower()
    if head == 0:
        return "the file is empty"
    if isinstance(e, EOFError) or "end of data" in text or "ended before" in text:
        return f"truncated: the {kind or 'tar'} data ends early"
    if not kind:
        return "not a tar archive, nor gzip, bzip2 or xz compressed"
    if "invalid header" in text or "truncated header" in text or "empty file" in text:
        return f"{kind} compressed, but not a tar archive inside"
    return f"corrupt {kind} data ({first_line(e)})"


def _read_folder(path: Path) -> list[tuple]:
    rows = []
    for f in path.glob("*/*/*.txt"):  # named as in the tarball, whatever the folder is called
        row = _row("aclImdb/" + f.relative_to(path).as_posix(), f.read_bytes())
        if row is not None:
            rows.append(row)
    return rows


def _read_hub(name: str) -> dict[str, Texts]:
    import datasets  # heavy import, only for this source

    try:
        ds = datasets.load_dataset(name)
    except Exception as e:  # datasets raises many types for "not reachable / not found"
        raise DataError(f"could not load {name!r} from the Hugging Face hub: {e}") from e
    return {s: (list(ds[s]["text"]), [int(y) for y in ds[s]["label"]]) for s in ("train", "test")}


def stratified_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (kept, held_out): `fraction` of each label held out, chosen with `seed`."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)
    kept, held = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_held = round(len(idx) * fraction)
        held += idx[:n_held].tolist()
        kept += idx[n_held:].tolist()
    return sorted(kept), sorted(held)


def _take(data: Texts, idx: list[int]) -> Texts:
    return [data[0][i] for i in idx], [data[1][i] for i in idx]


def load_splits(source: Source, val_fraction: float, split_seed: int,
                limit: int | None = None) -> dict[str, Texts]:
    """train / val (carved from train, stratified) / test, each cut to `limit` if given."""
    raw = read(source)
    train_idx, val_idx = stratified_split(raw["train"][1], val_fraction, split_seed)
    splits = {"train": _take(raw["train"], train_idx), "val": _take(raw["train"], val_idx),
              "test": raw["test"]}
    return cut_to_limit(splits, limit, split_seed)


def cut_to_limit(splits: dict[str, Texts], limit: int | None,
                 seed: int) -> dict[str, Texts]:
    """Each split cut to `limit` texts (stratified, seeded) where it has more; None: all."""
    if limit is None:
        return splits
    return {name: _take(data, stratified_split(data[1], limit / len(data[1]), seed)[1])
            if limit < len(data[1]) else data for name, data in splits.items()}
