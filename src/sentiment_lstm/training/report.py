"""A run's last steps: the best checkpoint on the test split, and results.json."""

import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from sentiment_lstm import __version__
from sentiment_lstm.data.tokenizer import EncodedSplit
from sentiment_lstm.evaluation.metrics import predicted
from sentiment_lstm.evaluation.predictions import save_predictions
from sentiment_lstm.evaluation.scoring import test_checkpoint
from sentiment_lstm.io import atomic_write_text
from sentiment_lstm.reports.failures import where_it_fails
from sentiment_lstm.reports.tracking import Tracker
from sentiment_lstm.training.state import TrainState

log = logging.getLogger(__name__)


def test_best(out: Path, splits: dict[str, EncodedSplit], cfg: DictConfig,
              device: torch.device, tracker: Tracker, step: int, is_main: bool) -> dict:
    """The best checkpoint on the test split, overall and per review length; which reviews
    it got right goes to test_predictions.csv, for paired tests between runs."""
    test = splits["test"]
    result, probs = test_checkpoint(out / "best.ckpt", test, cfg, device)
    correct = predicted(probs) == test.labels
    if is_main:
        save_predictions(correct, test.lengths, out / "test_predictions.csv")
    tracker.scalars({"test/loss": result["loss"], "test/acc": result["acc"],
                     "test/macro_f1": result["macro_f1"],
                     **{f"test/f1_by_class/{name}": c["f1"]
                        for name, c in result["per_class"].items()}}, step)
    tracker.by_length("test", result["acc_by_len"], step)
    where_it_fails(tracker, out / "best.ckpt", splits, probs, device, step)
    log.info("test acc %.4f macro-F1 %.4f; by length: %s", result["acc"], result["macro_f1"],
             {k: (round(v["acc"], 4), v["n"]) for k, v in result["acc_by_len"].items()})
    return result


def summary(cfg: DictConfig, state: TrainState, model_args: dict, labels: list[str],
            **run: object) -> dict:
    """results.json's content before the test: what ran, how it trained, how long it took.
    `run`: params, device, processes, data (its stats), prepare_s."""
    s = state
    best_f1 = next((h.get("val_macro_f1") for h in s.history if h["epoch"] == s.best_epoch),
                   None)
    return {"version": __version__, "encoder": model_args["encoder"],
            "variant": model_args.get("variant", "vanilla"), "seed": cfg.seed,
            "params": run["params"], "device": run["device"], "processes": run["processes"],
            "precision": str(cfg.trainer.precision), "labels": labels,
            "best_epoch": s.best_epoch, "val": {"acc": s.best_acc, "macro_f1": best_f1},
            "data": run["data"], "history": s.history, "skipped_batches": s.skipped,
            "timing": {"prepare_s": run["prepare_s"], "train_s": s.train_time,
                       "train_tokens_per_s": s.train_tokens / max(s.train_time, 1e-9)}}


def write_results(results: dict, out: Path, cfg: DictConfig, tracker: Tracker,
                  is_main: bool) -> None:
    """results.json (rank 0) and the run's HPARAMS entry, whose metrics are scalars too."""
    metrics = {"val/best_acc": results["val"]["acc"]}
    if results.get("test"):
        metrics["test/acc"] = results["test"]["acc"]
    if is_main:
        atomic_write_text(json.dumps(results, indent=2), out / "results.json")
    tracker.hparams({**OmegaConf.to_container(cfg.model, enum_to_str=True),
                     **{f"optim.{k}": v for k, v in cfg.optim.items()},
                     "data.max_len": cfg.data.max_len, "seed": cfg.seed}, metrics)
    log.info("results in %s: %s", out / "results.json",
             {k: results[k]["acc"] for k in ("val", "test") if results.get(k)})
