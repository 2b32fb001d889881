"""Atomic save, safe load (weights_only), the self-contained bundle, per-review predictions,
finding what to resume, and the signal flag that makes training stop and save."""

import logging
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch
from omegaconf import DictConfig, OmegaConf

from sentiment_lstm import __version__
from sentiment_lstm.config import Config, ConfigError
from sentiment_lstm.data import LABELS

FORMAT = "sentiment_lstm/1"
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    pass


class StopSignal:
    """SIGINT / SIGTERM set a flag; training stops after the current step and saves."""

    def __init__(self):
        self.received: int | None = None

    def __enter__(self) -> "StopSignal":
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never half of one.
    """
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Path.write_text, but a crash leaves the old file or the new one, as atomic_save does."""
    _atomic_write(path, lambda f: f.write(text.encode()))


def _atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide runs from co-workers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


PREDICTIONS_HEADER = "length,correct"


def save_predictions(correct: torch.Tensor, lengths: torch.Tensor, path: str | Path) -> None:
    """Which reviews a checkpoint got right, one CSV row per review in split order: its token
    count and 1 (right) or 0 (wrong). `compare` pairs runs with it (McNemar)."""
    rows = (f"{n},{int(c)}\n" for n, c in zip(lengths.tolist(), correct.tolist()))
    atomic_write_text(PREDICTIONS_HEADER + "\n" + "".join(rows), path)


def load_predictions(path: str | Path) -> dict[str, torch.Tensor]:
    """save_predictions' file as {"correct": bool tensor, "lengths": int32 tensor}."""
    try:
        lines = Path(path).read_text().splitlines()
        if lines[0] != PREDICTIONS_HEADER:
            raise ValueError(f"header is not {PREDICTIONS_HEADER!r}")
        rows = [tuple(map(int, line.split(","))) for line in lines[1:]]
        if not rows or any(len(r) != 2 or r[0] < 0 or r[1] not in (0, 1) for r in rows):
            raise ValueError("rows are not non-negative length, 0 or 1")
    except (IndexError, ValueError) as e:  # ValueError includes UnicodeDecodeError
        raise CheckpointError(f"{path}: not a predictions file ({e})") from None
    lengths, correct = zip(*rows)
    return {"correct": torch.tensor(correct, dtype=torch.bool),
            "lengths": torch.tensor(lengths, dtype=torch.int32)}


def make_bundle(model: torch.nn.Module, model_args: dict, tokenizer, cfg, **extra) -> dict:
    """A checkpoint that needs nothing but this package to reload, in weights_only-safe types:
    weights, the model's keyword arguments, tokenizer, label names, truncation, the config."""
    return {"format": FORMAT, "version": __version__, "model_args": model_args,
            "state_dict": model.state_dict(), "tokenizer": tokenizer.to_str(),
            "labels": list(LABELS),
            "data": {"max_len": cfg.data.max_len, "truncate": str(cfg.data.truncate)},
            "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), **extra}


def load_bundle(path: str | Path) -> dict:
    """Load a checkpoint file (or a run directory's best.ckpt) without running pickled code."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.ckpt", "last.ckpt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise CheckpointError(f"no best.ckpt or last.ckpt in {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, refused global: all the same to a user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a loadable checkpoint: {first}") from e
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    return bundle


def average_bundles(paths: list[str | Path]) -> dict:
    """The first checkpoint with its weights replaced by the mean of all of theirs: checkpoint
    averaging, e.g. of a run's last epochs (keep_epoch_checkpoints). They must share the model
    and the tokenizer."""
    bundles = [load_bundle(p) for p in paths]
    first = bundles[0]
    for path, bundle in zip(paths[1:], bundles[1:]):
        if (bundle["model_args"], bundle["tokenizer"]) != (first["model_args"],
                                                            first["tokenizer"]):
            raise CheckpointError(f"{path}: another model or tokenizer than {paths[0]}; "
                                  "only checkpoints of one model average")
    state = {name: torch.stack([b["state_dict"][name].double() for b in bundles]).mean(0)
             .to(t.dtype) for name, t in first["state_dict"].items()}
    return {**first, "state_dict": state}


def find_resumable(runs_dir: Path, exclude: Path) -> Path | None:
    """The newest run directory below runs_dir with a last.ckpt and no results.json."""
    unfinished = [p.parent for p in runs_dir.glob("*/last.ckpt")
                  if p.parent != exclude and not (p.parent / "results.json").exists()]
    return max(unfinished, key=lambda p: (p / "last.ckpt").stat().st_mtime, default=None)


# What a resumed run may change from its saved config: when it stops (patience), where the
# same data lies, how fast and how verbosely it runs, whether it is tested at the end.
# Nothing here changes the weights it trains to.
RESUME_SETTABLE = ("trainer.patience", "trainer.threads", "trainer.progress",
                   "trainer.log_every", "trainer.test", "data.path", "data.cache_dir")


def _flat(cfg: DictConfig) -> dict[str, Any]:
    """{"model.hidden_size": 128, ...}: every leaf by its dotted key."""
    flat = {}

    def walk(node: dict, prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                flat[prefix + k] = v
    walk(OmegaConf.to_container(cfg, enum_to_str=True), "")
    return flat


def _apply_overrides(saved: DictConfig, cfg: DictConfig, overrides: list[str],
                     run: Path) -> None:
    """Take the command line's RESUME_SETTABLE keys into the saved config; any other key it
    gives (or a group, or an experiment) must leave the saved config as it is."""
    given, kept = _flat(cfg), _flat(saved)
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key == "trainer.resume" or key.startswith("hydra"):
            continue
        if key in RESUME_SETTABLE:
            OmegaConf.update(saved, key, given[key])
            continue
        # a group's keys, or every key for an experiment (it has no key of its own)
        for k in [k for k in given if k.startswith(key + ".") or k == key] or given:
            if k not in (*RESUME_SETTABLE, "trainer.resume") and given[k] != kept.get(k):
                raise ConfigError(f"{k}={given[k]} cannot change when resuming {run} (it "
                                  f"trains with {kept.get(k)}); start a new run instead")


def resolve_resume(cfg: DictConfig, out: Path, overrides: list[str] = ()
                   ) -> tuple[DictConfig, Path, dict | None]:
    """(config, run directory, last checkpoint) for a fresh run or for trainer.resume=...
    A resumed run takes its saved config; `overrides` (the command line's) may change only
    RESUME_SETTABLE keys in it."""
    if cfg.trainer.resume is None:
        return cfg, out, None
    run = find_resumable(out.parent, out) if cfg.trainer.resume == "auto" else \
        Path(cfg.trainer.resume)
    if run is None:
        log.info("trainer.resume=auto: no unfinished run in %s, starting afresh", out.parent)
        return cfg, out, None
    last = load_bundle(run / "last.ckpt" if run.is_dir() else run)
    if "progress" not in last:
        raise CheckpointError(f"{run} holds no resumable training state")
    saved = OmegaConf.merge(OmegaConf.structured(Config), last["config"])
    saved.trainer.resume = None
    _apply_overrides(saved, cfg, list(overrides), run)
    return saved, (run if run.is_dir() else run.parent), last
