"""What `trainer.resume` continues: the run to resume, its saved config, which of the
command line's overrides it may take, and its state loaded back into the run."""

import contextlib
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from sentiment_lstm.checkpoint import CheckpointError, load_bundle
from sentiment_lstm.config import Config, ConfigError
from sentiment_lstm.runtime import distributed
from sentiment_lstm.training.schedule import out_of_patience
from sentiment_lstm.training.state import TrainState

log = logging.getLogger(__name__)


def find_resumable(runs_dir: Path, exclude: Path) -> Path | None:
    """The newest run directory below runs_dir with a last.ckpt and no results.json."""
    unfinished = [p.parent for p in runs_dir.glob("*/last.ckpt")
                  if p.parent != exclude and _unfinished(p.parent)]
    return max(unfinished, key=lambda p: (p / "last.ckpt").stat().st_mtime, default=None)


def _unfinished(run: Path) -> bool:
    return (run / "last.ckpt").is_file() and not (run / "results.json").exists()


# What a resumed run may change from its saved config: when it stops (patience), where the
# same data lies, how fast and how verbosely it runs, how often it saves, whether it is tested
# at the end. Nothing here changes the weights it trains to.
RESUME_SETTABLE = ("trainer.patience", "trainer.threads", "trainer.progress",
                   "trainer.log_every", "trainer.test", "trainer.requeue",
                   "trainer.checkpoint_every_steps", "trainer.checkpoint_every_minutes",
                   "data.path", "data.cache_dir")


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
    if cfg.trainer.resume is None and cfg.trainer.requeue and _unfinished(out):
        log.info("trainer.requeue: resuming this run directory's own %s", out / "last.ckpt")
        cfg.trainer.resume = str(out)  # a requeued job: the same command, the same directory
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


@contextlib.contextmanager
def log_continues_in(run: Path):
    """Hydra logs to the resuming command's own directory; the resumed run's log file goes
    on too, so that it holds the run's whole log."""
    root = logging.getLogger()
    launch = next((h for h in root.handlers if isinstance(h, logging.FileHandler)), None)
    if launch is None or Path(launch.baseFilename).parent == run.resolve():
        yield  # no log file (torchrun's other ranks, fit() called directly), or the same
        return
    handler = logging.FileHandler(run / Path(launch.baseFilename).name)  # appends
    handler.setFormatter(launch.formatter)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def restore(last: dict, out: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
            sched: torch.optim.lr_scheduler.LRScheduler, device: torch.device,
            patience: int) -> TrainState:
    """Load a last.ckpt into the run: weights, optimizer, schedule, this rank's RNG state;
    returns its progress. A larger patience than the one that stopped it trains on."""
    world = distributed.world()
    if last["progress"]["world"] != world:
        raise CheckpointError(f"{out / 'last.ckpt'} was written by {last['progress']['world']}"
                              f" process(es); resume it with as many, not {world}")
    model.load_state_dict(last["state_dict"])
    opt.load_state_dict(last["optimizer"])
    sched.load_state_dict(last["scheduler"])
    rng = last["rng"][distributed.rank()]
    torch.set_rng_state(rng["torch"])
    if device.type == "cuda" and rng["cuda"] is not None:
        torch.cuda.set_rng_state(rng["cuda"], device)
    state = TrainState.from_dict(last["progress"])
    if state.early_stopped and not out_of_patience(state.epoch - 1, state.best_epoch, patience):
        state.early_stopped = False
    return state
