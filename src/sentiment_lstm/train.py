"""Train a classifier on IMDB: fit(cfg, out_dir) does the work, main() is the Hydra CLI.

    python -m sentiment_lstm.train model=rnn trainer.max_epochs=3
    python -m sentiment_lstm.train -m model=lstm,rnn seed=0,1,2
    python -m sentiment_lstm.train trainer.resume=auto      # continue the newest unfinished run
"""

import itertools
import json
import logging
import math
import signal
import sys
import time
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from sentiment_lstm import __version__
from sentiment_lstm.batching import BucketBatchSampler, batches, padding_fraction, truncation_stats
from sentiment_lstm.checkpoint import (
    CheckpointError,
    atomic_save,
    load_bundle,
    make_bundle,
    resolve_resume,
)
from sentiment_lstm.config import ConfigError, register, validate
from sentiment_lstm.data import DataError
from sentiment_lstm.metrics import accuracy_by_length
from sentiment_lstm.models import SentimentClassifier
from sentiment_lstm.tokenizer import EncodedSplit, prepare
from sentiment_lstm.tracking import Tracker

log = logging.getLogger(__name__)
EVAL_BATCH = 256


class TrainingError(RuntimeError):
    pass


class Interrupted(RuntimeError):
    pass


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name} but CUDA is not available")
    return torch.device(name)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to min_ratio at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(model: SentimentClassifier, split: EncodedSplit, max_len: int, truncate: str,
             device: torch.device) -> tuple[float, torch.Tensor]:
    """Mean loss and a (N,) bool tensor of which reviews were classified right, in split order."""
    was_training = model.training
    model.eval()
    correct = torch.zeros(len(split), dtype=torch.bool)
    total = 0.0
    sampler = BucketBatchSampler(split.lengths, EVAL_BATCH, shuffle=False)
    for batch in batches(split, sampler, max_len, truncate):
        b = batch.to(device)
        logits = model(b.tokens, b.lengths)
        total += F.cross_entropy(logits, b.labels, reduction="sum").item()
        correct[batch.index] = (logits.argmax(1) == b.labels).cpu()
    model.train(was_training)
    return total / len(split), correct


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


def fit(cfg: DictConfig, out_dir: str | Path) -> dict:
    validate(cfg)
    cfg, out, last = resolve_resume(cfg, Path(out_dir))
    if last is not None:
        validate(cfg)  # the saved config, which an older version may have written
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    device = pick_device(cfg.trainer.device)
    d = cfg.data
    tok, splits = prepare(d)
    tok.save(str(out / "tokenizer.json"))
    prepare_s = time.perf_counter() - start
    log.info("data ready in %.1fs: %s", prepare_s, {k: len(v) for k, v in splits.items()})

    args = {"vocab_size": tok.get_vocab_size(),
            **OmegaConf.to_container(cfg.model, enum_to_str=True)}
    model = SentimentClassifier(**args).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr,
                            weight_decay=cfg.optim.weight_decay)
    train = splits["train"]
    sampler = BucketBatchSampler(train.lengths.clamp(max=d.max_len), d.batch_size,
                                 d.pool_batches, shuffle=True, seed=cfg.seed)
    total_steps = cfg.trainer.max_epochs * len(sampler)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(
        s, cfg.optim.warmup_steps, total_steps, cfg.optim.min_lr_ratio))
    progress = {"epoch": 0, "batch": 0, "step": 0, "best_acc": -1.0, "best_epoch": -1,
                "history": [], "train_tokens": 0, "train_time": 0.0, "skipped": 0,
                "early_stopped": False,
                "sums": [0.0, 0, 0]}  # this epoch's loss sum, correct, seen
    if last is not None:
        model.load_state_dict(last["state_dict"])
        opt.load_state_dict(last["optimizer"])
        sched.load_state_dict(last["scheduler"])
        torch.set_rng_state(last["rng"]["torch"])
        if device.type == "cuda" and last["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state_all(last["rng"]["cuda"])
        progress = last["progress"]

    def save_last() -> None:
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None}
        state = make_bundle(model, args, tok, cfg, epoch=progress["epoch"],
                            step=progress["step"], optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), rng=rng, progress=progress)
        atomic_save(state, out / "last.ckpt")
        if cfg.trainer.keep_epoch_checkpoints and progress["batch"] == 0:  # an epoch's end
            atomic_save(state, out / f"epoch{progress['epoch'] - 1:03d}.ckpt")

    tracker = Tracker(out)
    data_stats = {"data/padding_fraction": padding_fraction(train, sampler, d.max_len),
                  **{f"data/{k}": v for k, v in truncation_stats(train, d.max_len).items()}}
    if last is None:
        tracker.scalars(data_stats, 0)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: %d parameters on %s; %s", args["encoder"], n_params, device, data_stats)

    with StopSignal() as stop:
        try:
            _epochs(model, opt, sched, splits, sampler, cfg, device, tracker, progress, stop,
                    save_last, lambda **meta: atomic_save(
                        make_bundle(model, args, tok, cfg, **meta), out / "best.ckpt"))
        except Interrupted:
            tracker.close()
            name = signal.Signals(stop.received).name
            raise Interrupted(f"{name}: stopped at step {progress['step']} and saved "
                              f"{out / 'last.ckpt'}; resume with: python -m sentiment_lstm.train "
                              f"trainer.resume={out}") from None

    p = progress
    results = {"version": __version__, "encoder": args["encoder"], "seed": cfg.seed,
               "params": n_params, "device": str(device), "best_epoch": p["best_epoch"],
               "val": {"acc": p["best_acc"]}, "data": data_stats, "history": p["history"],
               "skipped_batches": p["skipped"],
               "timing": {"prepare_s": prepare_s, "train_s": p["train_time"],
                          "train_tokens_per_s": p["train_tokens"] / max(p["train_time"], 1e-9)}}
    tracker.scalars({"val/best_acc": p["best_acc"]}, p["step"])
    metrics = {"val/best_acc": p["best_acc"]}
    if cfg.trainer.test:
        results["test"] = _test(out, splits["test"], cfg, device, tracker, p["step"])
        metrics["test/acc"] = results["test"]["acc"]
    results["timing"]["total_s"] = time.perf_counter() - start
    (out / "results.json").write_text(json.dumps(results, indent=2))
    tracker.hparams({**OmegaConf.to_container(cfg.model, enum_to_str=True),
                     **{f"optim.{k}": v for k, v in cfg.optim.items()},
                     "data.max_len": d.max_len, "seed": cfg.seed}, metrics)
    tracker.close()
    log.info("results in %s: %s", out / "results.json",
             {k: results[k]["acc"] for k in ("val", "test") if k in results})
    return results


def _epochs(model, opt, sched, splits, sampler, cfg, device, tracker, p, stop, save_last,
            save_best) -> None:
    """Epochs from p["epoch"], batch p["batch"] on; updates the progress dict p in place."""
    d = cfg.data
    while p["epoch"] < cfg.trainer.max_epochs and not p["early_stopped"]:
        sampler.set_epoch(p["epoch"])
        epoch_start = time.perf_counter()
        _train_epoch(model, opt, sched, splits["train"], sampler, cfg, device, tracker, p, stop,
                     save_last)
        p["train_time"] += time.perf_counter() - epoch_start
        val_loss, val_correct = evaluate(model, splits["val"], d.max_len, d.truncate, device)
        val_acc = val_correct.float().mean().item()
        tracker.scalars({"val/loss": val_loss, "val/acc": val_acc}, p["step"])
        loss_sum, correct, seen = p["sums"]
        p["history"].append({"epoch": p["epoch"], "step": p["step"],
                             "train_loss": loss_sum / max(seen, 1),
                             "train_acc": correct / max(seen, 1),
                             "val_loss": val_loss, "val_acc": val_acc})
        log.info("epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.0fs",
                 p["epoch"], loss_sum / max(seen, 1), correct / max(seen, 1), val_loss, val_acc,
                 time.perf_counter() - epoch_start)
        if val_acc > p["best_acc"]:
            p["best_acc"], p["best_epoch"] = val_acc, p["epoch"]
            save_best(epoch=p["epoch"], step=p["step"], val_acc=val_acc)
        if p["epoch"] - p["best_epoch"] >= cfg.trainer.patience:
            log.info("early stop: no better val/acc for %d epochs", cfg.trainer.patience)
            p["early_stopped"] = True
        p["epoch"], p["batch"], p["sums"] = p["epoch"] + 1, 0, [0.0, 0, 0]
        save_last()
        if stop.received and not p["early_stopped"]:
            raise Interrupted


def _train_epoch(model, opt, sched, train, sampler, cfg, device, tracker, p, stop,
                 save_last) -> None:
    model.train()
    d = cfg.data
    window_tokens, window_start = 0, time.perf_counter()
    todo = itertools.islice(sampler, p["batch"], None)  # skip what a resumed run already did
    bar = tqdm(batches(train, todo, d.max_len, d.truncate), total=len(sampler),
               initial=p["batch"], desc=f"epoch {p['epoch']}", disable=not cfg.trainer.progress,
               leave=False)
    for batch in bar:
        b = batch.to(device)
        logits = model(b.tokens, b.lengths)
        loss = F.cross_entropy(logits, b.labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # Clip: a recurrent net's gradient can explode on long reviews and undo training.
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
            where = f"step {p['step']} (epoch {p['epoch']}, batch {p['batch']})"
            if not cfg.trainer.skip_nonfinite:
                raise TrainingError(f"non-finite loss or gradient at {where}; the last good "
                                    "checkpoint is last.ckpt (trainer.skip_nonfinite=true skips "
                                    "such batches)")
            log.warning("skipping batch with non-finite loss or gradient at %s", where)
            p["skipped"] += 1
        else:
            opt.step()
        sched.step()
        p["step"] += 1
        p["batch"] += 1
        n, batch_tokens = len(batch.labels), int(batch.lengths.sum())
        sums = p["sums"]
        sums[0] += loss.item() * n
        sums[1] += int((logits.argmax(1) == b.labels).sum())
        sums[2] += n
        p["train_tokens"] += batch_tokens
        window_tokens += batch_tokens
        if p["step"] % cfg.trainer.log_every == 0:
            tok_s = window_tokens / (time.perf_counter() - window_start)
            tracker.scalars({"train/loss": sums[0] / sums[2], "train/acc": sums[1] / sums[2],
                             "train/lr": sched.get_last_lr()[0],
                             "train/grad_norm": grad_norm.item(), "train/tokens_per_s": tok_s},
                            p["step"])
            bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.3f}",
                            tok_s=f"{tok_s:.0f}")
            window_tokens, window_start = 0, time.perf_counter()
        if stop.received:
            save_last()
            raise Interrupted


def _test(out: Path, test: EncodedSplit, cfg, device, tracker: Tracker, step: int) -> dict:
    """Evaluate the best checkpoint on the test split, overall and per review length."""
    best = load_bundle(out / "best.ckpt")
    model = SentimentClassifier(**best["model_args"])
    model.load_state_dict(best["state_dict"])
    model.to(device)
    loss, correct = evaluate(model, test, cfg.data.max_len, cfg.data.truncate, device)
    table = accuracy_by_length(correct, test.lengths, list(cfg.eval.bucket_edges))
    acc = correct.float().mean().item()
    tracker.scalars({"test/loss": loss, "test/acc": acc}, step)
    tracker.by_length("test", table, step)
    log.info("test acc %.4f; by length: %s", acc,
             {k: (round(v["acc"], 4), v["n"]) for k, v in table.items()})
    return {"acc": acc, "loss": loss, "n": len(test), "best_epoch": best["epoch"],
            "acc_by_len": table}


register()


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> float:
    try:
        results = fit(cfg, HydraConfig.get().runtime.output_dir)
    except Interrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        sys.exit(130)
    except (ConfigError, DataError, CheckpointError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return results["val"]["acc"]


if __name__ == "__main__":
    main()
