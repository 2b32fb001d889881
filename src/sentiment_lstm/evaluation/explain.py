"""What a model reads, token by token: the running prediction (what it would output if the
review ended at this token), the custom LSTM's gates and cell norms, and which units decide.

    explain(load_classifier(run), ["I loved it."])   # one dict of numpy arrays per review

The running prediction is exact. A one-direction model's prefix state is its state at t, so
one pass gives every prefix: the head on h_t (pooling=last) or on the running max / mean of
the outputs. A bidirectional model's backward direction reads the review from its end, so
the output of a prefix needs a run on that prefix: every prefix up to PREFIX_CUT tokens, and
past that every s-th prefix (s = ceil(T / PREFIX_CUT)) and the last, the others left NaN.
"""

import math
from typing import Protocol

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.data.batching import collate
from sentiment_lstm.data.tokenizer import EncodedSplit
from sentiment_lstm.evaluation.diagnostics import traced
from sentiment_lstm.io import InputError
from sentiment_lstm.model.classifier import CustomLSTMEncoder, SentimentClassifier

PREFIX_CUT = 400  # a bidirectional model re-runs at most this many prefixes per review
MAX_FED = 5000  # tokens fed to the model; more (truncate=none) is refused
GATE_NAMES = ("input", "forget", "output", "candidate")
PREFIX_BATCH = 64


class Explainable(Protocol):  # inference.Classifier (a later stage, so not imported here)
    model: SentimentClassifier
    tokenizer: Tokenizer
    labels: list[str]
    max_len: int
    truncate: str
    encoder: str


def directions(model: SentimentClassifier) -> list[str]:
    """Names of the top layer's directions, as diagnostics.traced names them."""
    enc = model.encoder
    layers = enc.lstm.layers if isinstance(enc, CustomLSTMEncoder) else enc.layers
    top = f"l{len(layers) - 1}"
    return [top, f"{top}_reverse"][:len(layers[-1])]


def fed_positions(n: int, max_len: int, truncate: str) -> Tensor:
    """Which of a review's n tokens the model is fed, by batching.collate itself."""
    split = EncodedSplit(torch.arange(n, dtype=torch.int32), torch.tensor([0, n]),
                         torch.tensor([-1]))
    return collate(split, torch.tensor([0]), max_len, truncate).tokens[0]


def _pool(model: SentimentClassifier, out: Tensor) -> Tensor:
    """Running pooled features of a one-direction model, out (T, D) -> (T, width)."""
    steps = torch.arange(1, len(out) + 1, dtype=out.dtype)[:, None]
    feats = [out] if model.pooling == "last" else []
    if model.pooling in ("max", "max_mean"):
        feats.append(out.cummax(0).values)
    if model.pooling in ("mean", "max_mean"):
        feats.append(out.cumsum(0) / steps)
    return torch.cat(feats, -1)


def _prefix_ends(T: int, cut: int) -> list[int]:
    stride = math.ceil(T / cut)
    return sorted(set(range(stride - 1, T, stride)) | {T - 1})


@torch.no_grad()
def running_prediction(model: SentimentClassifier, ids: Tensor,
                       cut: int = PREFIX_CUT) -> tuple[np.ndarray, str]:
    """Class probabilities (T, C) had the review ended at each token, and how they were had.
    ids (T,) are the tokens fed (after truncation)."""
    model.eval()
    T = len(ids)
    if len(directions(model)) == 1:
        out, _ = model.encoder(model.embed(ids[:, None]), torch.tensor([T]))  # (T, 1, D)
        probs = model.head(model.drop(_pool(model, out[:, 0]))).softmax(-1)
        return probs.numpy(), "one pass (the model reads left to right)"
    ends = _prefix_ends(T, cut)
    probs = np.full((T, model.head.out_features), np.nan, dtype=np.float32)
    for chunk in range(0, len(ends), PREFIX_BATCH):
        todo = torch.tensor(ends[chunk:chunk + PREFIX_BATCH])
        lengths = todo + 1
        tokens = ids[:int(lengths.max())].repeat(len(todo), 1)  # (B, t) padded per row below
        tokens[torch.arange(tokens.shape[1])[None, :] >= lengths[:, None]] = 0
        probs[todo.numpy()] = model(tokens, lengths).softmax(-1).numpy()
    every = "every prefix" if len(ends) == T else (
        f"one prefix in {math.ceil(T / cut)} (the review is over {cut} tokens) and the last")
    return probs, f"the model re-run on {every} (it reads both ways)"


@torch.no_grad()
def hidden_norms(model: SentimentClassifier, ids: Tensor) -> dict[str, np.ndarray]:
    """||h_t|| (T,) of each top-layer direction, in position order."""
    out, _ = model.encoder(model.embed(ids[:, None]), torch.tensor([len(ids)]))  # (T, 1, D*H)
    names = directions(model)
    per = out[:, 0].view(len(ids), len(names), -1).norm(dim=-1)  # (T, D)
    return {name: per[:, d].numpy() for d, name in enumerate(names)}


@torch.no_grad()
def lstm_gates(model: SentimentClassifier, ids: Tensor) -> dict[str, dict[str, np.ndarray]]:
    """Per layer and direction: each gate and the candidate g (T, H), ||c_t|| (T,), in
    position order (t = 0 is the first token fed), from LSTMCell.step's trace."""
    model.eval()
    with traced(model) as records:
        model(ids[None], torch.tensor([len(ids)]))
    report = {}
    for name, steps in records.items():
        def stack(key: str, steps: list = steps, flip: bool = name.endswith("_reverse")):
            x = torch.stack([s[key][0] for s in steps])  # (T, H) in the order the steps ran
            return x.flip(0) if flip else x

        report[name] = {g: stack(g).numpy() for g in GATE_NAMES}
        report[name]["cell_norm"] = stack("cell").norm(dim=-1).numpy()
    return report


@torch.no_grad()
def unit_contributions(model: SentimentClassifier, ids: Tensor) -> dict[str, np.ndarray]:
    """Per top-layer direction (H,): each unit's share of the predicted class's logit margin
    over the mean of the others' logits, head weight x pooled feature (a unit appears twice
    under max_mean pooling: its two shares are summed)."""
    model.eval()
    feats = {}

    def keep(module, inputs, output) -> None:  # returning None leaves the output alone
        feats["x"] = inputs[0]

    hook = model.head.register_forward_hook(keep)
    try:
        logits = model(ids[None], torch.tensor([len(ids)]))[0]  # (C,)
    finally:
        hook.remove()
    w = model.head.weight  # (C, width)
    pred = int(logits.argmax())
    others = torch.cat([w[:pred], w[pred + 1:]]).mean(0)
    names = directions(model)
    share = ((w[pred] - others) * feats["x"][0]).view(-1, len(names), w.shape[1] // (
        len(names) * (2 if model.pooling == "max_mean" else 1))).sum(0)  # (D, H)
    return {name: share[d].numpy() for d, name in enumerate(names)}


def _tokens(clf: Explainable, text: str, which: int) -> tuple[list, Tensor]:
    if not text.strip():
        raise InputError(f"review {which} is empty")
    enc = clf.tokenizer.encode(text)
    if not enc.ids:
        raise InputError(f"review {which} has no tokens")
    return enc, fed_positions(len(enc.ids), clf.max_len, clf.truncate)


def _aligned(values: np.ndarray, fed: Tensor, at: Tensor) -> np.ndarray:
    """values (len(fed), ...) over one model's fed positions, laid on positions `at` (NaN
    where that model was not fed the token)."""
    out = np.full((len(at), *values.shape[1:]), np.nan, dtype=np.float32)
    where = {p: i for i, p in enumerate(fed.tolist())}
    for j, p in enumerate(at.tolist()):
        if p in where:
            out[j] = values[where[p]]
    return out


def _model_view(clf: Explainable, ids: Tensor, cut: int) -> dict:
    with torch.no_grad():
        probs = clf.model(ids[None], torch.tensor([len(ids)])).softmax(-1)[0].numpy()
    running, method = running_prediction(clf.model, ids, cut)
    return {"encoder": clf.encoder, "label": clf.labels[int(probs.argmax())], "probs": probs,
            "running": running, "running_method": method,
            "hidden_norm": hidden_norms(clf.model, ids)}


def explain(clf: Explainable, texts: list[str], compare: Explainable | None = None,
            cut: int = PREFIX_CUT) -> list[dict]:
    """One dict per review, arrays over the T tokens fed to `clf` (a custom LSTM): "tokens"
    (the text pieces, from the tokenizer's offsets), "positions" (T,) among all n_tokens,
    the model's "label" and "probs" (C,), "running" (T, C), "gates" {layer/direction:
    {input, forget, output, candidate: (T, H), cell_norm: (T,)}}, "units" {top-layer
    direction: (H,) share of the logit margin}; with `compare` (another checkpoint with the
    same tokenizer), "compare": its label, probs, running and hidden_norm on the same tokens."""
    if clf.encoder != "lstm":
        raise CheckpointError(f"explain needs a custom LSTM checkpoint (model=lstm), not "
                              f"encoder={clf.encoder}; give that one as --compare")
    if compare is not None and compare.tokenizer.to_str() != clf.tokenizer.to_str():
        raise CheckpointError("the --compare checkpoint has another tokenizer: its tokens "
                              "would not line up with the LSTM's")
    results = []
    for k, text in enumerate(texts, 1):
        enc, fed = _tokens(clf, text, k)
        if len(fed) > MAX_FED:
            raise InputError(f"review {k} feeds {len(fed)} tokens (truncate={clf.truncate}); "
                             f"explain shows at most {MAX_FED}")
        ids = torch.tensor(enc.ids)[fed]
        row = {"text": text, "n_tokens": len(enc.ids), "positions": fed.numpy(),
               "tokens": [text[a:b] for a, b in (enc.offsets[p] for p in fed.tolist())],
               "token_ids": ids.numpy(), "labels": list(clf.labels), "max_len": clf.max_len,
               "truncate": clf.truncate, **_model_view(clf, ids, cut),
               "gates": lstm_gates(clf.model, ids), "units": unit_contributions(clf.model, ids)}
        if compare is not None:
            other = fed_positions(len(enc.ids), compare.max_len, compare.truncate)
            view = _model_view(compare, torch.tensor(enc.ids)[other], cut)
            view["running"] = _aligned(view["running"], other, fed)
            view["hidden_norm"] = {n: _aligned(v, other, fed)
                                   for n, v in view["hidden_norm"].items()}
            row["compare"] = view
        results.append(row)
    return results


def top_units(row: dict, k: int = 8) -> dict[str, np.ndarray]:
    """Per top-layer direction, the k units with the largest |share| of the margin, largest
    first."""
    return {name: np.argsort(-np.abs(share), kind="stable")[:k]
            for name, share in row["units"].items()}


def to_json(row: dict, k: int = 8) -> dict:
    """What the page shows, as plain lists: gate means over units and the top-k units'
    values (T, k) instead of every unit."""
    def plain(x):
        if isinstance(x, dict):
            return {key: plain(v) for key, v in x.items()}
        if isinstance(x, np.ndarray):
            return [None if v != v else v for v in x.tolist()] if x.ndim == 1 else [
                plain(r) for r in x]
        return x.item() if isinstance(x, np.generic) else x

    units = top_units(row, k)
    gates = {name: {**{f"{g}_mean": d[g].mean(1) for g in GATE_NAMES},
                    **({f"{g}_top": d[g][:, units[name]] for g in GATE_NAMES}
                       if name in units else {}), "cell_norm": d["cell_norm"]}
             for name, d in row["gates"].items()}
    out = {key: v for key, v in row.items() if key not in ("gates", "units")}
    out["gates"] = gates
    out["top_units"] = {name: {"unit": u, "share": row["units"][name][u]}
                        for name, u in units.items()}
    return plain(out)
