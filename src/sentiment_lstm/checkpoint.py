"""The self-contained checkpoint bundle: made from a model, loaded safely (weights_only),
averaged over several files."""

from pathlib import Path

import torch
from omegaconf import OmegaConf

from sentiment_lstm import __version__
from sentiment_lstm.data.types import LABELS
from sentiment_lstm.io import first_line

FORMAT = "sentiment_lstm/1"


class CheckpointError(RuntimeError):
    pass


def make_bundle(model: torch.nn.Module, model_args: dict, tokenizer, cfg,
                labels: list[str] = LABELS, **extra) -> dict:
    """A checkpoint that needs nothing but this package to reload, in weights_only-safe types:
    weights, the model's keyword arguments, tokenizer, label names (in class index order),
    truncation, the config."""
    return {"format": FORMAT, "version": __version__, "model_args": model_args,
            "state_dict": model.state_dict(), "tokenizer": tokenizer.to_str(),
            "labels": list(labels),
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
        raise CheckpointError(f"{path} is not a loadable checkpoint: {first_line(e)}") from e
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    for model in (bundle.get("model_args", {}), bundle.get("config", {}).get("model", {})):
        if "fused" in model:  # the path's boolean name: True is kernel auto, False the loop
            model["kernel"] = "auto" if model.pop("fused") else "loop"
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
