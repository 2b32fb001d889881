"""Train a classifier on IMDB: fit(cfg, out_dir) does the work, main() is the Hydra CLI.

    python -m sentiment_lstm.train model=rnn trainer.max_epochs=3
    python -m sentiment_lstm.train -m model=lstm,rnn seed=0,1,2
    python -m sentiment_lstm.train trainer.resume=auto      # continue the newest unfinished run
    torchrun --standalone --nproc_per_node=2 -m sentiment_lstm.train   # data-parallel
"""

import contextlib
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
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sentiment_lstm import __version__, distributed
from sentiment_lstm.batching import (
    BucketBatchSampler,
    batches,
    fed_lengths,
    padding_fraction,
    truncation_stats,
)
from sentiment_lstm.checkpoint import (
    CheckpointError,
    StopSignal,
    atomic_save,
    atomic_write_text,
    make_bundle,
    resolve_resume,
    save_predictions,
)
from sentiment_lstm.config import ConfigError, register, validate
from sentiment_lstm.data import DataError
from sentiment_lstm.diagnostics import probe, probe_batch
from sentiment_lstm.evaluate import autocast, evaluate_split, test_checkpoint
from sentiment_lstm.memory import reuse_freed_memory
from sentiment_lstm.models import SentimentClassifier
from sentiment_lstm.tokenizer import EncodedSplit, prepare
from sentiment_lstm.tracking import Tracker

log = logging.getLogger(__name__)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to min_ratio at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class TrainingError(RuntimeError):
    pass


class Interrupted(RuntimeError):
    pass


def adversarial_noise(grad: torch.Tensor, eps: float) -> torch.Tensor:
    """The worst-case (to first order) perturbation of a batch's embeddings of L2 norm eps per
    review: grad (T, B, E), the loss gradient with respect to them."""
    norm = grad.pow(2).sum(dim=(0, 2), keepdim=True).sqrt()
    return eps * grad / norm.clamp_min(1e-12)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name} but CUDA is not available")
    return distributed.local_device(name)


def fit(cfg: DictConfig, out_dir: str | Path, overrides: list[str] = ()) -> dict:
    """Train (or resume, with the command line's `overrides` checked against the saved
    config), evaluate, and write the run's files to out_dir."""
    validate(cfg)
    cfg, out, last = resolve_resume(cfg, Path(out_dir), overrides)
    if last is None:
        return _fit(cfg, out, None)
    validate(cfg)  # the saved config, which an older version may have written
    with _log_continues_in(out):
        log.info("resuming %s at epoch %d, batch %d", out, last["progress"]["epoch"],
                 last["progress"]["batch"])
        return _fit(cfg, out, last)


@contextlib.contextmanager
def _log_continues_in(run: Path):
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


def _fit(cfg: DictConfig, out: Path, last: dict | None) -> dict:
    rank, world = distributed.rank(), distributed.world()
    is_main = rank == 0  # only rank 0 writes files
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    if cfg.trainer.reuse_memory and not reuse_freed_memory():
        log.info("trainer.reuse_memory: not glibc, malloc left as it is")
    device = pick_device(cfg.trainer.device)
    d = cfg.data
    with distributed.main_first():  # one rank tokenizes and caches, the others read the cache
        tok, splits = prepare(d)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        tok.save(str(out / "tokenizer.json"))
    prepare_s = time.perf_counter() - start
    log.info("data ready in %.1fs: %s", prepare_s, {k: len(v) for k, v in splits.items()})

    args = {"vocab_size": tok.get_vocab_size(),
            **OmegaConf.to_container(cfg.model, enum_to_str=True)}
    model = SentimentClassifier(**args).to(device)
    ddp = model
    if world > 1:  # DDP starts every rank from rank 0's weights and averages gradients
        ddp = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        torch.manual_seed(cfg.seed + rank)  # each rank its own dropout masks
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr,  # fused: one kernel per step
                            weight_decay=cfg.optim.weight_decay, fused=True)
    train = splits["train"]
    sampler = BucketBatchSampler(fed_lengths(train.lengths, d.max_len, d.truncate), d.batch_size,
                                 d.pool_batches, shuffle=True, seed=cfg.seed, rank=rank,
                                 world=world)
    total_steps = cfg.trainer.max_epochs * len(sampler)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(
        s, cfg.optim.warmup_steps, total_steps, cfg.optim.min_lr_ratio))
    progress = {"epoch": 0, "batch": 0, "step": 0, "best_acc": -1.0, "best_epoch": -1,
                "history": [], "train_tokens": 0, "train_time": 0.0, "skipped": 0,
                "early_stopped": False, "world": world,
                "sums": [0.0, 0, 0]}  # this epoch's loss sum, correct, seen (all ranks)
    if last is not None:
        progress = _restore(last, out, model, opt, sched, device)
        if progress["early_stopped"] and not _out_of_patience(
                progress["epoch"] - 1, progress["best_epoch"], cfg.trainer.patience):
            progress["early_stopped"] = False  # a larger trainer.patience: train on
    earlier_s = progress.get("elapsed_s", 0.0)  # the time of the processes before this one

    def elapsed_s() -> float:  # this run's time, all its processes together
        return earlier_s + time.perf_counter() - start

    def save_last() -> None:  # called on every rank: it gathers each rank's RNG state
        rng = distributed.gather({"torch": torch.get_rng_state(), "cuda": (
            torch.cuda.get_rng_state(device) if device.type == "cuda" else None)})
        if not is_main:
            return
        progress["elapsed_s"] = elapsed_s()
        state = make_bundle(model, args, tok, cfg, epoch=progress["epoch"],
                            step=progress["step"], optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), rng=rng, progress=progress)
        atomic_save(state, out / "last.ckpt")
        if cfg.trainer.keep_epoch_checkpoints and progress["batch"] == 0:  # an epoch's end
            atomic_save(state, out / f"epoch{progress['epoch'] - 1:03d}.ckpt")

    def save_best(**meta) -> None:
        if is_main:
            atomic_save(make_bundle(model, args, tok, cfg, **meta), out / "best.ckpt")

    tracker = Tracker(out if is_main else None)
    diagnose = None
    if cfg.diagnostics.every and is_main:
        batch = [t.to(device) for t in probe_batch(splits["val"], cfg.diagnostics.reviews,
                                                   cfg.diagnostics.length)]

        def diagnose(step: int) -> None:
            tracker.diagnostics(probe(model, *batch), step)
    data_stats = {"data/padding_fraction": padding_fraction(train, sampler, d.max_len,
                                                            d.truncate),
                  **{f"data/{k}": v
                     for k, v in truncation_stats(train, d.max_len, d.truncate).items()}}
    if last is None:
        tracker.scalars(data_stats, 0)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: %d parameters on %s x %d; %s", args["encoder"], n_params, device,
             world, data_stats)

    with StopSignal() as stop:
        try:
            _epochs(ddp, opt, sched, splits, sampler, cfg, device, tracker, progress, stop,
                    save_last, save_best, diagnose)
        except TrainingError:
            tracker.close()  # the curves up to the failure reach the event file
            raise
        except Interrupted:
            tracker.close()
            name = signal.Signals(stop.received).name
            raise Interrupted(f"{name}: stopped at step {progress['step']} and saved "
                              f"{out / 'last.ckpt'}; resume with: python -m sentiment_lstm.train "
                              f"trainer.resume={out}") from None

    p = progress
    results = {"version": __version__, "encoder": args["encoder"], "seed": cfg.seed,
               "params": n_params, "device": str(device), "processes": world,
               "precision": str(cfg.trainer.precision), "best_epoch": p["best_epoch"],
               "val": {"acc": p["best_acc"]}, "data": data_stats, "history": p["history"],
               "skipped_batches": p["skipped"],
               "timing": {"prepare_s": prepare_s, "train_s": p["train_time"],
                          "train_tokens_per_s": p["train_tokens"] / max(p["train_time"], 1e-9)}}
    tracker.scalars({"val/best_acc": p["best_acc"]}, p["step"])
    metrics = {"val/best_acc": p["best_acc"]}
    if cfg.trainer.test:
        results["test"] = _test(out, splits["test"], cfg, device, tracker, p["step"])
        metrics["test/acc"] = results["test"]["acc"]
    results["timing"]["total_s"] = elapsed_s()
    if is_main:
        atomic_write_text(json.dumps(results, indent=2), out / "results.json")
    tracker.hparams({**OmegaConf.to_container(cfg.model, enum_to_str=True),
                     **{f"optim.{k}": v for k, v in cfg.optim.items()},
                     "data.max_len": d.max_len, "seed": cfg.seed}, metrics)
    tracker.close()
    log.info("results in %s: %s", out / "results.json",
             {k: results[k]["acc"] for k in ("val", "test") if k in results})
    return results


def _restore(last: dict, out: Path, model, opt, sched, device: torch.device) -> dict:
    """Load a last.ckpt's weights, optimizer, schedule and this rank's RNG state; returns
    its progress dict."""
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
    return last["progress"]


def _out_of_patience(epoch: int, best_epoch: int, patience: int) -> bool:
    """Early stopping's rule, after `epoch` (0-based) was validated."""
    return epoch - best_epoch >= patience


def _epochs(model, opt, sched, splits, sampler, cfg, device, tracker, p, stop, save_last,
            save_best, diagnose) -> None:
    """Epochs from p["epoch"], batch p["batch"] on; updates the progress dict p in place."""
    d = cfg.data
    net = getattr(model, "module", model)  # evaluation bypasses DDP: shards differ in size
    while p["epoch"] < cfg.trainer.max_epochs and not p["early_stopped"]:
        sampler.set_epoch(p["epoch"])
        epoch_start = time.perf_counter()
        _train_epoch(model, opt, sched, splits["train"], sampler, cfg, device, tracker, p, stop,
                     save_last, diagnose)
        p["train_time"] += time.perf_counter() - epoch_start
        val_loss, val_correct = evaluate_split(net, splits["val"], d.max_len, d.truncate,
                                               device, cfg.trainer.precision)
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
        if _out_of_patience(p["epoch"], p["best_epoch"], cfg.trainer.patience):
            log.info("early stop: no better val/acc for %d epochs", cfg.trainer.patience)
            p["early_stopped"] = True
        p["epoch"], p["batch"], p["sums"] = p["epoch"] + 1, 0, [0.0, 0, 0]
        save_last()
        if stop.received and not p["early_stopped"]:
            raise Interrupted


def _train_epoch(model, opt, sched, train, sampler, cfg, device, tracker, p, stop,
                 save_last, diagnose) -> None:
    model.train()
    d = cfg.data
    window_tokens, window_start = 0, time.perf_counter()
    todo = itertools.islice(sampler, p["batch"], None)  # skip what a resumed run already did
    bar = tqdm(batches(train, todo, d.max_len, d.truncate), total=len(sampler),
               initial=p["batch"], desc=f"epoch {p['epoch']}", leave=False,
               disable=not cfg.trainer.progress or distributed.rank() > 0)
    eps = cfg.optim.adversarial
    for batch in bar:
        b = batch.to(device)
        opt.zero_grad(set_to_none=True)
        noise = None  # with eps > 0, a zero perturbation whose gradient is the loss's
        if eps:
            noise = torch.zeros(*b.tokens.t().shape, cfg.model.embed_dim, device=device,
                                requires_grad=True)
        with autocast(device, cfg.trainer.precision):
            logits = model(b.tokens, b.lengths, noise).float()
        loss = F.cross_entropy(logits, b.labels)
        loss.backward()
        if eps:
            with autocast(device, cfg.trainer.precision):
                adv = model(b.tokens, b.lengths, adversarial_noise(noise.grad, eps)).float()
            F.cross_entropy(adv, b.labels).backward()  # accumulates onto the clean gradient
        # Clip: a recurrent net's gradient can explode on long reviews and undo training.
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        # One all-reduce per step (nothing in one process): the ranks agree on skipping a
        # batch and on stopping, or their collectives would hang, and the sums cover them all.
        n = len(batch.labels)
        step = distributed.all_reduce(torch.tensor(
            [float(not (torch.isfinite(loss) and torch.isfinite(grad_norm))),
             float(stop.received is not None), loss.item() * n,
             float((logits.argmax(1) == b.labels).sum()), n, float(batch.lengths.sum())],
            dtype=torch.float64))
        if step[1] and stop.received is None:
            stop.received = signal.SIGTERM  # another rank was signalled
        if step[0]:
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
        sums = p["sums"]  # this epoch's loss sum, correct, seen
        for i in range(3):
            sums[i] += step[2 + i].item()
        p["train_tokens"] += int(step[5])
        window_tokens += int(step[5])
        if p["step"] % cfg.trainer.log_every == 0:
            tok_s = window_tokens / (time.perf_counter() - window_start)
            tracker.scalars({"train/loss": sums[0] / sums[2], "train/acc": sums[1] / sums[2],
                             "train/lr": sched.get_last_lr()[0],
                             "train/grad_norm": grad_norm.item(), "train/tokens_per_s": tok_s},
                            p["step"])
            bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.3f}",
                            tok_s=f"{tok_s:.0f}")
            window_tokens, window_start = 0, time.perf_counter()
        if diagnose and p["step"] % cfg.diagnostics.every == 0:
            diagnose(p["step"])
        if stop.received:
            save_last()
            raise Interrupted


def _test(out: Path, test: EncodedSplit, cfg, device, tracker: Tracker, step: int) -> dict:
    """Evaluate the best checkpoint on the test split, overall and per review length; keep
    which reviews it got right (test_predictions.csv) for paired tests between runs."""
    result, correct = test_checkpoint(out / "best.ckpt", test, cfg, device)
    if distributed.rank() == 0:
        save_predictions(correct, test.lengths, out / "test_predictions.csv")
    tracker.scalars({"test/loss": result["loss"], "test/acc": result["acc"]}, step)
    tracker.by_length("test", result["acc_by_len"], step)
    log.info("test acc %.4f; by length: %s", result["acc"],
             {k: (round(v["acc"], 4), v["n"]) for k, v in result["acc_by_len"].items()})
    return result


register()


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def run(cfg: DictConfig) -> float:
    try:
        hydra_cfg = HydraConfig.get()
        results = fit(cfg, hydra_cfg.runtime.output_dir, hydra_cfg.overrides.task)
    except Interrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        sys.exit(130)
    except (ConfigError, DataError, CheckpointError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return results["val"]["acc"]


def main() -> None:
    """The CLI. Under torchrun: join the process group first; rank 0 alone writes Hydra's
    files and the log file, the other ranks log warnings to the console."""
    if not distributed.launched():
        run()
        return
    if distributed.init():
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=stdout",
                     "hydra.job_logging.root.level=WARNING"]
    try:
        run()
    except SystemExit as e:  # Hydra's 1 and run()'s 2 and 130
        distributed.finish(e.code)
    distributed.finish(0)


if __name__ == "__main__":
    main()
