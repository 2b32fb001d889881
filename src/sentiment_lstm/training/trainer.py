"""Training as named steps over a named state: set up (runtime, data, model and optimizer,
tracking), train epochs (train steps, validate, save), test, report. `fit(cfg, out_dir)` is
what `python -m sentiment_lstm.train` runs."""

import itertools
import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from sentiment_lstm.checkpoint import make_bundle
from sentiment_lstm.config import IMDB_BUCKET_EDGES, validate
from sentiment_lstm.data.batching import (
    Batch,
    BucketBatchSampler,
    batches,
    fed_lengths,
    feed_stats,
)
from sentiment_lstm.data.labels import class_weights
from sentiment_lstm.data.sources import is_imdb
from sentiment_lstm.data.tokenizer import prepare
from sentiment_lstm.evaluation.diagnostics import probe, probe_batch
from sentiment_lstm.evaluation.metrics import classification_report, default_edges, predicted
from sentiment_lstm.evaluation.scoring import evaluate_split
from sentiment_lstm.io import atomic_save
from sentiment_lstm.reports.tracking import Tracker
from sentiment_lstm.runtime import distributed
from sentiment_lstm.runtime.device import pick_device
from sentiment_lstm.runtime.memory import reuse_freed_memory
from sentiment_lstm.training.build import build_model, build_optimizer
from sentiment_lstm.training.objective import loss_and_gradient
from sentiment_lstm.training.report import summary, test_best, write_results
from sentiment_lstm.training.resume import log_continues_in, resolve_resume, restore
from sentiment_lstm.training.schedule import CheckpointCadence, out_of_patience
from sentiment_lstm.training.signals import Interrupted, StopSignal, stopped
from sentiment_lstm.training.state import EpochSums, TrainingError, TrainState

log = logging.getLogger(__name__)


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
        self.setup_tracking()
        with StopSignal() as self.stop:
            try:
                self.train()
            except TrainingError:
                self.tracker.close()  # the curves up to the failure reach the event file
                raise
            except Interrupted:
                self.tracker.close()
                raise Interrupted(stopped(self.stop.received, self.state.step, self.out,
                                          self.cfg.trainer.requeue and self.is_main)) from None
        return self.finish()

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
        self.model_args = {"vocab_size": self.tokenizer.get_vocab_size(),
                           **OmegaConf.to_container(self.cfg.model, enum_to_str=True),
                           "num_classes": len(self.labels)}
        if self.class_weight is not None:
            self.class_weight = self.class_weight.to(self.device)
        self.model, self.net = build_model(self.model_args, self.device, self.cfg.seed)
        self.opt, self.sched = build_optimizer(self.cfg, self.model,
                                               self.cfg.trainer.max_epochs * len(self.sampler))
        if self.last is not None:  # weights, optimizer, schedule, RNG state and progress
            self.state = restore(self.last, self.out, self.model, self.opt, self.sched,
                                 self.device, self.cfg.trainer.patience)

    def setup_tracking(self) -> None:
        cfg, d, train = self.cfg, self.cfg.data, self.splits["train"]
        # a resumed run hides what the killed process logged after its checkpoint
        self.tracker = Tracker(self.out if self.is_main else None,
                               purge_step=None if self.last is None else self.state.step + 1)
        self.probe = None
        if cfg.diagnostics.every and self.is_main:
            self.probe = [t.to(self.device) for t in probe_batch(
                self.splits["val"], cfg.diagnostics.reviews, cfg.diagnostics.length)]
        self.data_stats = feed_stats(train, self.sampler, d.max_len, d.truncate)
        if self.last is None:
            self.tracker.scalars(self.data_stats, 0)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        log.info("model %s: %d parameters on %s x %d; %s", self.model_args["encoder"],
                 self.n_params, self.device, self.world, self.data_stats)

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
            signalled = distributed.all_reduce(torch.tensor([float(bool(self.stop.received))]))
            if self.stop.agree(signalled[0]) and not s.early_stopped:
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
            if self.stop_agreed:
                self.save_last()
                raise Interrupted
            if self.save_due:  # mid-epoch: what a SIGKILL or a crash resumes from
                self.save_last()

    def train_step(self, batch: Batch) -> None:
        cfg, s = self.cfg, self.state
        b = batch.to(self.device)
        self.opt.zero_grad(set_to_none=True)
        logits, loss = loss_and_gradient(
            self.net, b, self.class_weight, self.cfg.optim.adversarial,
            self.cfg.model.embed_dim, self.cfg.trainer.precision)
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
        self.stop_agreed = self.stop.agree(agreed[1])
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
        sums, step = self.state.sums, self.state.step
        tok_s = self.window_tokens / (time.perf_counter() - self.window_start)
        self.tracker.scalars({"train/loss": sums.mean_loss(), "train/acc": sums.accuracy(),
                              "train/lr": self.sched.get_last_lr()[0],
                              "train/grad_norm": self.grad_norm.item(),
                              "train/tokens_per_s": tok_s}, step)
        bar.set_postfix(loss=f"{sums.mean_loss():.3f}", acc=f"{sums.accuracy():.3f}",
                        tok_s=f"{tok_s:.0f}")
        self.window_tokens, self.window_start = 0, time.perf_counter()

    def validate(self, epoch_start: float) -> None:
        d, s = self.cfg.data, self.state
        val = self.splits["val"]
        val_loss, probs = evaluate_split(self.model, val, d.max_len, d.truncate, self.device,
                                         self.cfg.trainer.precision)
        pred = predicted(probs)
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

    def finish(self) -> dict:
        cfg, s = self.cfg, self.state
        results = summary(cfg, s, self.model_args, self.labels, params=self.n_params,
                          device=str(self.device), processes=self.world, data=self.data_stats,
                          prepare_s=self.prepare_s)
        self.tracker.scalars({"val/best_acc": s.best_acc}, s.step)
        if cfg.trainer.test and "test" not in self.splits:
            results["test"], results["test_skipped"] = None, "the data has no test split"
            log.info("no test: the data has no test split (data.test=PATH or "
                     "data.splits.test=NAME gives one)")
        elif cfg.trainer.test:
            results["test"] = test_best(self.out, self.splits, cfg, self.device, self.tracker,
                                        s.step, self.is_main)
        results["timing"]["total_s"] = self.elapsed_s()
        write_results(results, self.out, cfg, self.tracker, self.is_main)
        self.tracker.close()
        return results
