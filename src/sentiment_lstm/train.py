"""Train a classifier on IMDB: fit(cfg, out_dir) does the work, main() is the Hydra CLI.

    python -m sentiment_lstm.train model=rnn trainer.max_epochs=3
    python -m sentiment_lstm.train -m model=lstm,rnn seed=0,1,2
"""

import json
import logging
import math
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
from sentiment_lstm.checkpoint import FORMAT, CheckpointError, atomic_save, load_bundle
from sentiment_lstm.config import ConfigError, register, validate
from sentiment_lstm.data import LABELS, DataError
from sentiment_lstm.metrics import accuracy_by_length
from sentiment_lstm.models import SentimentClassifier
from sentiment_lstm.tokenizer import EncodedSplit, prepare
from sentiment_lstm.tracking import Tracker

log = logging.getLogger(__name__)
EVAL_BATCH = 256


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name} but CUDA is not available")
    return torch.device(name)


def model_args(cfg: DictConfig, vocab_size: int) -> dict:
    """The classifier's keyword arguments as plain values: what a checkpoint needs to rebuild it."""
    args = OmegaConf.to_container(cfg.model, enum_to_str=True)
    return {"vocab_size": vocab_size, **args}


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


def bundle(model, args, tok, cfg, **extra) -> dict:
    """A checkpoint that needs nothing but this package to reload (weights_only-safe types)."""
    return {"format": FORMAT, "version": __version__, "model_args": args,
            "state_dict": model.state_dict(), "tokenizer": tok.to_str(), "labels": list(LABELS),
            "data": {"max_len": cfg.data.max_len, "truncate": cfg.data.truncate.value},
            "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), **extra}


def fit(cfg: DictConfig, out_dir: str | Path) -> dict:
    validate(cfg)
    out = Path(out_dir)
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

    args = model_args(cfg, tok.get_vocab_size())
    model = SentimentClassifier(**args).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr,
                            weight_decay=cfg.optim.weight_decay)
    train = splits["train"]
    sampler = BucketBatchSampler(train.lengths.clamp(max=d.max_len), d.batch_size,
                                 d.pool_batches, shuffle=True, seed=cfg.seed)
    total_steps = cfg.trainer.max_epochs * len(sampler)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(
        s, cfg.optim.warmup_steps, total_steps, cfg.optim.min_lr_ratio))

    tracker = Tracker(out)
    data_stats = {"data/padding_fraction": padding_fraction(train, sampler, d.max_len),
                  **{f"data/{k}": v for k, v in truncation_stats(train, d.max_len).items()}}
    tracker.scalars(data_stats, 0)
    log.info("model %s: %d parameters on %s; %s", args["encoder"], n_params, device, data_stats)

    history, best_acc, best_epoch, step = [], -1.0, -1, 0
    train_tokens, train_time = 0, 0.0
    for epoch in range(cfg.trainer.max_epochs):
        sampler.set_epoch(epoch)
        epoch_start = time.perf_counter()
        stats = _train_epoch(model, opt, sched, train, sampler, cfg, device, tracker, step, epoch)
        step += stats["steps"]
        train_tokens += stats["tokens"]
        train_time += time.perf_counter() - epoch_start
        val_loss, val_correct = evaluate(model, splits["val"], d.max_len, d.truncate, device)
        val_acc = val_correct.float().mean().item()
        tracker.scalars({"val/loss": val_loss, "val/acc": val_acc}, step)
        history.append({"epoch": epoch, "step": step, "train_loss": stats["loss"],
                        "train_acc": stats["acc"], "val_loss": val_loss, "val_acc": val_acc,
                        "seconds": time.perf_counter() - epoch_start})
        log.info("epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.0fs", epoch,
                 stats["loss"], stats["acc"], val_loss, val_acc, history[-1]["seconds"])
        meta = {"epoch": epoch, "step": step, "val_acc": val_acc}
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            atomic_save(bundle(model, args, tok, cfg, **meta), out / "best.ckpt")
        atomic_save(bundle(model, args, tok, cfg, **meta, optimizer=opt.state_dict(),
                           scheduler=sched.state_dict()), out / "last.ckpt")
        if epoch - best_epoch >= cfg.trainer.patience:
            log.info("early stop: no better val/acc for %d epochs", cfg.trainer.patience)
            break

    results = {"version": __version__, "encoder": args["encoder"], "seed": cfg.seed,
               "params": n_params, "device": str(device), "best_epoch": best_epoch,
               "val": {"acc": best_acc}, "data": data_stats, "history": history,
               "timing": {"prepare_s": prepare_s, "train_s": train_time,
                          "train_tokens_per_s": train_tokens / max(train_time, 1e-9)}}
    tracker.scalars({"val/best_acc": best_acc}, step)
    if cfg.trainer.test:
        results["test"] = _test(out, splits["test"], cfg, device, tracker, step)
    results["timing"]["total_s"] = time.perf_counter() - start
    (out / "results.json").write_text(json.dumps(results, indent=2))
    metrics = {"val/best_acc": best_acc}
    if "test" in results:
        metrics["test/acc"] = results["test"]["acc"]
    tracker.hparams({**OmegaConf.to_container(cfg.model, enum_to_str=True),
                     **{f"optim.{k}": v for k, v in cfg.optim.items()},
                     "data.max_len": d.max_len, "seed": cfg.seed}, metrics)
    tracker.close()
    log.info("results in %s: %s", out / "results.json",
             {k: results[k]["acc"] for k in ("val", "test") if k in results})
    return results


def _train_epoch(model, opt, sched, train, sampler, cfg, device, tracker, step, epoch) -> dict:
    model.train()
    d = cfg.data
    loss_sum = correct = seen = tokens = 0
    window_tokens, window_start = 0, time.perf_counter()
    bar = tqdm(batches(train, sampler, d.max_len, d.truncate), total=len(sampler),
               desc=f"epoch {epoch}", disable=not cfg.trainer.progress, leave=False)
    for i, batch in enumerate(bar):
        b = batch.to(device)
        logits = model(b.tokens, b.lengths)
        loss = F.cross_entropy(logits, b.labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # Clip: a recurrent net's gradient can explode on long reviews and undo training.
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        sched.step()
        n = len(batch.labels)
        loss_sum += loss.item() * n
        correct += (logits.argmax(1) == b.labels).sum().item()
        seen += n
        batch_tokens = int(batch.lengths.sum())
        tokens += batch_tokens
        window_tokens += batch_tokens
        if (step + i + 1) % cfg.trainer.log_every == 0:
            tok_s = window_tokens / (time.perf_counter() - window_start)
            tracker.scalars({"train/loss": loss_sum / seen, "train/acc": correct / seen,
                             "train/lr": sched.get_last_lr()[0],
                             "train/grad_norm": grad_norm.item(), "train/tokens_per_s": tok_s},
                            step + i + 1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            tok_s=f"{tok_s:.0f}")
            window_tokens, window_start = 0, time.perf_counter()
    return {"steps": len(sampler), "loss": loss_sum / seen, "acc": correct / seen,
            "tokens": tokens}


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
    except (ConfigError, DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return results["val"]["acc"]


if __name__ == "__main__":
    main()
