"""Training as named steps over a named state: set up (runtime, data, model and optimizer,
tracking), train epochs (train steps, validate, save), test, report.

    fit(cfg, out_dir) -> results   # what `python -m sentiment_lstm.train` runs
"""

import itertools
import json
import logging
import signal
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sentiment_lstm import __version__
from sentiment_lstm.checkpoint import CheckpointError, make_bundle
from sentiment_lstm.config import IMDB_BUCKET_EDGES, validate
from sentiment_lstm.data.batching import (
    Batch,
    BucketBatchSampler,
    batches,
    fed_lengths,
    padding_fraction,
    truncation_stats,
)
from sentiment_lstm.data.labels import class_weights
from sentiment_lstm.data.sources import is_imdb
from sentiment_lstm.data.tokenizer import prepare
from sentiment_lstm.evaluation.diagnostics import probe, probe_batch
from sentiment_lstm.evaluation.metrics import classification_report, default_edges
from sentiment_lstm.evaluation.predictions import save_predictions
from sentiment_lstm.evaluation.scoring import evaluate_split, test_checkpoint
from sentiment_lstm.io import atomic_save, atomic_write_text
from sentiment_lstm.model.classifier import SentimentClassifier
from sentiment_lstm.reports.failures import where_it_fails
from sentiment_lstm.reports.tracking import Tracker
from sentiment_lstm.runtime import distributed
from sentiment_lstm.runtime.device import autocast, pick_device
from sentiment_lstm.runtime.memory import reuse_freed_memory
from sentiment_lstm.training.resume import log_continues_in, resolve_resume
from sentiment_lstm.training.schedule import (
    CheckpointCadence,
    adversarial_noise,
    lr_factor,
    out_of_patience,
)
from sentiment_lstm.training.signals import NOTICE, StopSignal, requeue_slurm_job
from sentiment_lstm.training.state import EpochSums, TrainState

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    pass


class Interrupted(RuntimeError):
    pass


def fit(cfg: DictConfig, out_dir: str | Path, overrides: list[str] = ()) -> dict:
    """Train (or resume, with the command line's `overrides` checked against the saved
    config), evaluate, and write the run's files to out_dir."""
    validate(cfg)
    cfg, out, last = resolve_resume(cfg, Path(out_dir), overrides)
    if last is None:
        return Trainer(cfg, out, None).run()
    validate(cfg)  # the saved config, which an older version may have written
    with log_continues_in(out):
        log.info("resuming %s at epoch %d, batch %d", out, last["progress"]["epoch"],
                 last["progress"]["batch"])
        return Trainer(cfg, out, last).run()


class Trainer:
    """One run. Only rank 0 writes files; every rank trains its shard of each batch."""

    def __init__(self, cfg: DictConfig, out: Path, last: dict | None):
        self.cfg, self.out, self.last = cfg, out, last
        self.rank, self.world = distributed.rank(), distributed.world()
        self.is_main = self.rank == 0
        self.start = time.perf_counter()
        self.state = TrainState(world=self.world)

    def run(self) -> dict:
        self.setup_runtime()
        self.setup_data()
        self.setup_model()
        self.restore()
        self.setup_tracking()
        with StopSignal() as self.stop:
            try:
                self.train()
            except TrainingError:
                self.tracker.close()  # the curves up to the failure reach the event file
                raise
            except Interrupted:
                self.tracker.close()
                name = signal.Signals(self.stop.received).name
                requeued = ""  # a cluster's notice (SIGUSR1), not a user's Ctrl-C or kill
                if self.cfg.trainer.requeue and self.stop.received == NOTICE and self.is_main:
                    requeued = f"; {requeue_slurm_job()}"
                raise Interrupted(
                    f"{name}: stopped at step {self.state.step} and saved "
                    f"{self.out / 'last.ckpt'}; resume with: python -m sentiment_lstm.train "
                    f"trainer.resume={self.out}{requeued}") from None
        return self.finish()

    # -- set up ----------------------------------------------------------------------------
    def setup_runtime(self) -> None:
        torch.manual_seed(self.cfg.seed)
        if self.cfg.trainer.threads:
            torch.set_num_threads(self.cfg.trainer.threads)
        if self.cfg.trainer.reuse_memory and not reuse_freed_memory():
            log.info("trainer.reuse_memory: not glibc, malloc left as it is")
        self.device = pick_device(self.cfg.trainer.device)

    def setup_data(self) -> None:
        d = self.cfg.data
        with distributed.main_first():  # one rank tokenizes and caches, the others read it
            self.tokenizer, self.splits, self.labels = prepare(d)
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.tokenizer.save(str(self.out / "tokenizer.json"))
        self.prepare_s = time.perf_counter() - self.start
        log.info("data ready in %.1fs: %s; %d classes %s", self.prepare_s,
                 {k: len(v) for k, v in self.splits.items()}, len(self.labels), self.labels)
        if self.cfg.eval.bucket_edges is None:  # the run's config, saved with its checkpoints
            self.cfg.eval.bucket_edges = IMDB_BUCKET_EDGES if is_imdb(d) else default_edges(
                self.splits["train"].lengths)
        weights = class_weights(self.splits["train"].labels.tolist(), len(self.labels),
                                self.cfg.loss.class_weights)
        self.class_weight = None if weights is None else torch.tensor(weights)
        self.sampler = BucketBatchSampler(
            fed_lengths(self.splits["train"].lengths, d.max_len, d.truncate), d.batch_size,
            d.pool_batches, shuffle=True, seed=self.cfg.seed, rank=self.rank, world=self.world)

    def setup_model(self) -> None:
        cfg = self.cfg
        self.model_args = {"vocab_size": self.tokenizer.get_vocab_size(),
                           **OmegaConf.to_container(cfg.model, enum_to_str=True),
                           "num_classes": len(self.labels)}
        if self.class_weight is not None:
            self.class_weight = self.class_weight.to(self.device)
        self.model = SentimentClassifier(**self.model_args).to(self.device)
        self.net = self.model  # what the training step calls: DDP's wrapper under torchrun
        if self.world > 1:  # DDP starts every rank from rank 0's weights, averages gradients
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            torch.manual_seed(cfg.seed + self.rank)  # each rank its own dropout masks
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.optim.lr,
                                     weight_decay=cfg.optim.weight_decay,
                                     fused=True)  # one kernel per step
        total_steps = cfg.trainer.max_epochs * len(self.sampler)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(
            s, cfg.optim.warmup_steps, total_steps, cfg.optim.min_lr_ratio))

    def restore(self) -> None:
        """A resumed run: weights, optimizer, schedule, this rank's RNG state and progress."""
        if self.last is None:
            return
        last = self.last
        if last["progress"]["world"] != self.world:
            raise CheckpointError(
                f"{self.out / 'last.ckpt'} was written by {last['progress']['world']} "
                f"process(es); resume it with as many, not {self.world}")
        self.model.load_state_dict(last["state_dict"])
        self.opt.load_state_dict(last["optimizer"])
        self.sched.load_state_dict(last["scheduler"])
        rng = last["rng"][self.rank]
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and rng["cuda"] is not None:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        s = self.state = TrainState.from_dict(last["progress"])
        if s.early_stopped and not out_of_patience(s.epoch - 1, s.best_epoch,
                                                   self.cfg.trainer.patience):
            s.early_stopped = False  # a larger trainer.patience: train on

    def setup_tracking(self) -> None:
        cfg, d, train = self.cfg, self.cfg.data, self.splits["train"]
        # a resumed run hides what the killed process logged after its checkpoint
        self.tracker = Tracker(self.out if self.is_main else None,
                               purge_step=None if self.last is None else self.state.step + 1)
        self.probe = None
        if cfg.diagnostics.every and self.is_main:
            self.probe = [t.to(self.device) for t in probe_batch(
                self.splits["val"], cfg.diagnostics.reviews, cfg.diagnostics.length)]
        self.data_stats = {
            "data/padding_fraction": padding_fraction(train, self.sampler, d.max_len,
                                                      d.truncate),
            **{f"data/{k}": v for k, v in truncation_stats(train, d.max_len, d.truncate).items()}}
        if self.last is None:
            self.tracker.scalars(self.data_stats, 0)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        log.info("model %s: %d parameters on %s x %d; %s", self.model_args["encoder"],
                 self.n_params, self.device, self.world, self.data_stats)

    # -- train -----------------------------------------------------------------------------
    def elapsed_s(self) -> float:
        """This run's wall time, all its processes together."""
        return self.state.elapsed_s + time.perf_counter() - self.start

    def train(self) -> None:
        s, t = self.state, self.cfg.trainer
        self.cadence = CheckpointCadence(t.checkpoint_every_steps, t.checkpoint_every_minutes)
        while s.epoch < self.cfg.trainer.max_epochs and not s.early_stopped:
            self.sampler.set_epoch(s.epoch)
            epoch_start = time.perf_counter()
            self.train_epoch()
            s.train_time += time.perf_counter() - epoch_start
            self.validate(epoch_start)
            s.epoch, s.batch, s.sums = s.epoch + 1, 0, EpochSums()
            self.save_last()
            if self.stop.received and not s.early_stopped:
                raise Interrupted

    def train_epoch(self) -> None:
        cfg, d, s = self.cfg, self.cfg.data, self.state
        self.net.train()
        self.window_tokens, self.window_start = 0, time.perf_counter()
        todo = itertools.islice(self.sampler, s.batch, None)  # what a resumed run has not done
        bar = tqdm(batches(self.splits["train"], todo, d.max_len, d.truncate),
                   total=len(self.sampler), initial=s.batch, desc=f"epoch {s.epoch}",
                   leave=False, disable=not cfg.trainer.progress or self.rank > 0)
        for batch in bar:
            self.train_step(batch)
            if s.step % cfg.trainer.log_every == 0:
                self.log_train(bar)
            if self.probe and s.step % cfg.diagnostics.every == 0:
                self.tracker.diagnostics(probe(self.model, *self.probe), s.step)
            if self.stop.received:
                self.save_last()
                raise Interrupted
            if self.save_due:  # mid-epoch: what a SIGKILL or a crash resumes from
                self.save_last()

    def train_step(self, batch: Batch) -> None:
        cfg, s = self.cfg, self.state
        b = batch.to(self.device)
        self.opt.zero_grad(set_to_none=True)
        logits, loss = self.forward_backward(b)
        # Clip: a recurrent net's gradient can explode on long reviews and undo training.
        self.grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                                        cfg.optim.grad_clip)
        # One all-reduce per step (nothing in one process): the ranks agree on skipping a
        # batch and on stopping, or their collectives would hang, and the sums cover them all.
        n = len(batch.labels)
        agreed = distributed.all_reduce(torch.tensor(
            [float(not (torch.isfinite(loss) and torch.isfinite(self.grad_norm))),
             float(self.stop.received is not None), loss.item() * n,
             float((logits.argmax(1) == b.labels).sum()), n, float(batch.lengths.sum()),
             float(self.cadence.time_due())], dtype=torch.float64))
        if agreed[1] and self.stop.received is None:
            self.stop.received = signal.SIGTERM  # another rank was signalled
        if agreed[0]:
            self.skip_batch()
        else:
            self.opt.step()
        self.sched.step()
        s.step += 1
        s.batch += 1
        self.save_due = self.cadence.due(s.step, bool(agreed[6]))
        s.sums.add(agreed[2].item(), agreed[3].item(), agreed[4].item())
        s.train_tokens += int(agreed[5])
        self.window_tokens += int(agreed[5])

    def forward_backward(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss's gradient, plus, with optim.adversarial > 0, the gradient of the loss on
        the embeddings moved adversarially (Miyato et al. 2017), accumulated onto it."""
        eps, precision = self.cfg.optim.adversarial, self.cfg.trainer.precision
        noise = None  # with eps > 0, a zero perturbation whose gradient is the loss's
        if eps:
            noise = torch.zeros(*b.tokens.t().shape, self.cfg.model.embed_dim,
                                device=self.device, requires_grad=True)
        with autocast(self.device, precision):
            logits = self.net(b.tokens, b.lengths, noise).float()
        loss = F.cross_entropy(logits, b.labels, weight=self.class_weight)
        loss.backward()
        if eps:
            with autocast(self.device, precision):
                adv = self.net(b.tokens, b.lengths, adversarial_noise(noise.grad, eps)).float()
            F.cross_entropy(adv, b.labels, weight=self.class_weight).backward()
        return logits, loss

    def skip_batch(self) -> None:
        s = self.state
        where = f"step {s.step} (epoch {s.epoch}, batch {s.batch})"
        if not self.cfg.trainer.skip_nonfinite:
            raise TrainingError(f"non-finite loss or gradient at {where}; the last good "
                                "checkpoint is last.ckpt (trainer.skip_nonfinite=true skips "
                                "such batches)")
        log.warning("skipping batch with non-finite loss or gradient at %s", where)
        s.skipped += 1

    def log_train(self, bar: tqdm) -> None:
        s = self.state
        tok_s = self.window_tokens / (time.perf_counter() - self.window_start)
        self.tracker.scalars({"train/loss": s.sums.loss / s.sums.seen,
                              "train/acc": s.sums.correct / s.sums.seen,
                              "train/lr": self.sched.get_last_lr()[0],
                              "train/grad_norm": self.grad_norm.item(),
                              "train/tokens_per_s": tok_s}, s.step)
        bar.set_postfix(loss=f"{s.sums.mean_loss():.3f}", acc=f"{s.sums.accuracy():.3f}",
                        tok_s=f"{tok_s:.0f}")
        self.window_tokens, self.window_start = 0, time.perf_counter()

    def validate(self, epoch_start: float) -> None:
        d, s = self.cfg.data, self.state
        val = self.splits["val"]
        val_loss, pred = evaluate_split(self.model, val, d.max_len, d.truncate, self.device,
                                        self.cfg.trainer.precision)
        val_acc = (pred == val.labels).float().mean().item()
        val_f1 = classification_report(pred, val.labels, self.labels)["macro_f1"]
        self.tracker.scalars({"val/loss": val_loss, "val/acc": val_acc,
                              "val/macro_f1": val_f1}, s.step)
        s.history.append({"epoch": s.epoch, "step": s.step, "train_loss": s.sums.mean_loss(),
                          "train_acc": s.sums.accuracy(), "val_loss": val_loss,
                          "val_acc": val_acc, "val_macro_f1": val_f1})
        log.info("epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f macro-F1 %.4f "
                 "| %.0fs", s.epoch, s.sums.mean_loss(), s.sums.accuracy(), val_loss, val_acc,
                 val_f1, time.perf_counter() - epoch_start)
        if val_acc > s.best_acc:
            s.best_acc, s.best_epoch = val_acc, s.epoch
            self.save_best(epoch=s.epoch, step=s.step, val_acc=val_acc)
        if out_of_patience(s.epoch, s.best_epoch, self.cfg.trainer.patience):
            log.info("early stop: no better val/acc for %d epochs", self.cfg.trainer.patience)
            s.early_stopped = True

    # -- save ------------------------------------------------------------------------------
    def bundle(self, **extra) -> dict:
        return make_bundle(self.model, self.model_args, self.tokenizer, self.cfg, self.labels,
                           **extra)

    def save_last(self) -> None:
        """The resumable last.ckpt. Called on every rank: it gathers each rank's RNG state."""
        rng = distributed.gather({"torch": torch.get_rng_state(), "cuda": (
            torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None)})
        self.cadence.saved()
        if not self.is_main:
            return
        self.tracker.flush()  # the events up to this step are on disk before the checkpoint
        s = self.state
        elapsed = self.elapsed_s()
        progress = {**s.to_dict(), "elapsed_s": elapsed}
        state = self.bundle(epoch=s.epoch, step=s.step, optimizer=self.opt.state_dict(),
                            scheduler=self.sched.state_dict(), rng=rng, progress=progress)
        atomic_save(state, self.out / "last.ckpt")
        if self.cfg.trainer.keep_epoch_checkpoints and s.batch == 0:  # an epoch's end
            atomic_save(state, self.out / f"epoch{s.epoch - 1:03d}.ckpt")

    def save_best(self, **meta) -> None:
        if self.is_main:
            atomic_save(self.bundle(**meta), self.out / "best.ckpt")

    # -- test and report -------------------------------------------------------------------
    def test(self) -> dict:
        """The best checkpoint on the test split, overall and per review length; which
        reviews it got right goes to test_predictions.csv, for paired tests between runs."""
        test, step = self.splits["test"], self.state.step
        result, correct = test_checkpoint(self.out / "best.ckpt", test, self.cfg, self.device)
        if self.is_main:
            save_predictions(correct, test.lengths, self.out / "test_predictions.csv")
        self.tracker.scalars({"test/loss": result["loss"], "test/acc": result["acc"],
                              "test/macro_f1": result["macro_f1"],
                              **{f"test/f1_by_class/{name}": c["f1"]
                                 for name, c in result["per_class"].items()}}, step)
        self.tracker.by_length("test", result["acc_by_len"], step)
        where_it_fails(self.tracker, self.out / "best.ckpt", self.splits, self.device, step)
        log.info("test acc %.4f macro-F1 %.4f; by length: %s", result["acc"], result["macro_f1"],
                 {k: (round(v["acc"], 4), v["n"]) for k, v in result["acc_by_len"].items()})
        return result

    def best_val_f1(self) -> float | None:
        return next((h.get("val_macro_f1") for h in self.state.history
                     if h["epoch"] == self.state.best_epoch), None)

    def finish(self) -> dict:
        cfg, s = self.cfg, self.state
        results = {"version": __version__, "encoder": self.model_args["encoder"],
                   "variant": self.model_args.get("variant", "vanilla"),
                   "seed": cfg.seed, "params": self.n_params, "device": str(self.device),
                   "processes": self.world, "precision": str(cfg.trainer.precision),
                   "labels": self.labels, "best_epoch": s.best_epoch,
                   "val": {"acc": s.best_acc, "macro_f1": self.best_val_f1()},
                   "data": self.data_stats, "history": s.history,
                   "skipped_batches": s.skipped,
                   "timing": {"prepare_s": self.prepare_s, "train_s": s.train_time,
                              "train_tokens_per_s": s.train_tokens / max(s.train_time, 1e-9)}}
        self.tracker.scalars({"val/best_acc": s.best_acc}, s.step)
        metrics = {"val/best_acc": s.best_acc}
        if cfg.trainer.test and "test" not in self.splits:
            results["test"], results["test_skipped"] = None, "the data has no test split"
            log.info("no test: the data has no test split (data.test=PATH or "
                     "data.splits.test=NAME gives one)")
        elif cfg.trainer.test:
            results["test"] = self.test()
            metrics["test/acc"] = results["test"]["acc"]
        results["timing"]["total_s"] = self.elapsed_s()
        if self.is_main:
            atomic_write_text(json.dumps(results, indent=2), self.out / "results.json")
        self.tracker.hparams({**OmegaConf.to_container(cfg.model, enum_to_str=True),
                              **{f"optim.{k}": v for k, v in cfg.optim.items()},
                              "data.max_len": cfg.data.max_len, "seed": cfg.seed}, metrics)
        self.tracker.close()
        log.info("results in %s: %s", self.out / "results.json",
                 {k: results[k]["acc"] for k in ("val", "test") if results.get(k)})
        return results
