"""A checkpoint as an ONNX model for serving: tokens (B, T) int64 and lengths (B,) int64 in,
class probabilities (B, C) out, batch and sequence length dynamic; beside it the tokenizer,
the label names and truncation (config.json) and a runnable onnxruntime example."""

import json
import shutil
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from sentiment_lstm.checkpoint import FORMAT, CheckpointError
from sentiment_lstm.io import atomic_write_text
from sentiment_lstm.model.classifier import SentimentClassifier, as_torch_lstm

OPSET = 17
EXAMPLE = Path(__file__).parent / "templates" / "predict.py"  # the README's example


class Probabilities(nn.Module):
    """forward(tokens (B, T), lengths (B,)) -> probabilities (B, C): what a server wants."""

    def __init__(self, model: SentimentClassifier):
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.model(tokens, lengths).softmax(-1)  # (B, C)


def serving_model(bundle: dict) -> Probabilities:
    """The bundle's classifier in eval mode, the custom LSTM as nn.LSTM (as_torch_lstm)."""
    variant = bundle["model_args"].get("variant", "vanilla")
    if variant != "vanilla":
        raise CheckpointError(f"the {variant} LSTM variant has no nn.LSTM counterpart to "
                              "export to ONNX; --format hf exports it")
    model = SentimentClassifier(**bundle["model_args"])
    model.load_state_dict(bundle["state_dict"])
    return Probabilities(as_torch_lstm(model.eval(), bundle["model_args"])).eval()


def export_onnx(bundle: dict, out: Path) -> Path:
    """Write out/model.onnx, tokenizer.json, config.json and predict.py; returns the model."""
    model = serving_model(bundle)
    # A trace of two reviews of different lengths: the length masking is traced on real data.
    tokens = torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0]])  # (2, 4)
    lengths = torch.tensor([4, 2])
    path = out / "model.onnx"
    with warnings.catch_warnings():  # the exporter's advice on LSTM batch sizes: the test
        warnings.simplefilter("ignore")  # runs other batch sizes against PyTorch
        torch.onnx.export(
            model, (tokens, lengths), str(path), dynamo=False, opset_version=OPSET,
            input_names=["tokens", "lengths"], output_names=["probabilities"],
            dynamic_axes={"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                          "probabilities": {0: "batch"}})
    atomic_write_text(bundle["tokenizer"], out / "tokenizer.json")
    atomic_write_text(json.dumps(serving_config(bundle), indent=2), out / "config.json")
    shutil.copyfile(EXAMPLE, out / "predict.py")
    return path


def serving_config(bundle: dict) -> dict:
    """What a client needs beside the model: the label of each output column, how a long
    review is cut (max_len, truncate: head | tail | head_tail | none), the padding id."""
    return {"format": f"{FORMAT}+onnx", "labels": bundle["labels"],
            "max_len": bundle["data"]["max_len"], "truncate": bundle["data"]["truncate"],
            "pad_id": bundle["model_args"].get("pad_id", 0),
            "encoder": bundle["model_args"]["encoder"],
            "inputs": {"tokens": "(batch, time) int64, 0-padded after each review",
                       "lengths": "(batch,) int64, at least 1 (an empty review: one 0)"},
            "outputs": {"probabilities": "(batch, classes) float32, columns as labels"}}
