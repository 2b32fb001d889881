"""A checkpoint as a Hugging Face Hub model folder: model.safetensors, config.json (the
model's arguments, labels, truncation), tokenizer.json and a model card README.md.

    save_hub_folder(bundle, "exported", results)      # what `export --format hf` writes
    HubSentimentClassifier.from_pretrained("exported")  # the weights again, as an nn.Module
    load_hub_classifier("exported").predict(["A fine film."])
"""

import inspect
import json
from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import load_file

from sentiment_lstm import __version__
from sentiment_lstm.config import EvalConfig
from sentiment_lstm.inference import Classifier
from sentiment_lstm.io import atomic_write_text
from sentiment_lstm.model.classifier import SentimentClassifier


class HubSentimentClassifier(SentimentClassifier, PyTorchModelHubMixin,
                             library_name="sentiment_lstm", tags=["text-classification",
                                                                  "sentiment", "lstm", "imdb"]):
    """SentimentClassifier with save_pretrained / from_pretrained / push_to_hub."""


def save_hub_folder(bundle: dict, out: Path, results: dict | None) -> None:
    model = HubSentimentClassifier(**bundle["model_args"])
    model.load_state_dict(bundle["state_dict"])
    cfg = bundle["config"]
    config = {**bundle["model_args"], "labels": bundle["labels"], **bundle["data"],
              "bucket_edges": cfg.get("eval", {}).get("bucket_edges", EvalConfig().bucket_edges),
              "seed": cfg.get("seed"), "sentiment_lstm_version": __version__}
    model.save_pretrained(out, config=config)
    atomic_write_text(bundle["tokenizer"], out / "tokenizer.json")
    atomic_write_text(model_card(bundle, results), out / "README.md")  # replaces the mixin's


def load_hub_classifier(folder: str | Path, device: str = "auto") -> Classifier:
    """A saved folder as the package's Classifier (tokenizer, truncation, length buckets)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    names = inspect.signature(SentimentClassifier).parameters
    args = {k: config[k] for k in names if k in config}
    bundle = {"model_args": args, "state_dict": load_file(folder / "model.safetensors"),
              "tokenizer": (folder / "tokenizer.json").read_text(), "labels": config["labels"],
              "data": {"max_len": config["max_len"], "truncate": config["truncate"]},
              "config": {"seed": config.get("seed"),
                         "eval": {"bucket_edges": config["bucket_edges"]}}}
    return Classifier(bundle, device)


def push_folder(folder: Path, repo_id: str) -> str:
    """Upload the folder to the Hub (needs a token: `hf auth login`); returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder))
    return f"https://huggingface.co/{repo_id}"


def model_card(bundle: dict, results: dict | None) -> str:
    a, cfg = bundle["model_args"], bundle["config"]
    data = cfg.get("data", {})
    encoder = {"lstm": "a hand-written LSTM cell (nn.LSTM's gates and parameter names)",
               "torch_lstm": "nn.LSTM", "rnn": "nn.RNN (tanh)"}.get(a["encoder"], a["encoder"])
    lines = ["---", "library_name: sentiment_lstm", "tags: [text-classification, sentiment, "
             "lstm, imdb]", "datasets: [stanfordnlp/imdb]", "language: [en]", "---", "",
             f"# sentiment_lstm: {a['encoder']}, IMDB", "",
             f"Binary sentiment ({', '.join(bundle['labels'])}) of English movie reviews: "
             f"embeddings ({a['embed_dim']}) -> {encoder}, {a['num_layers']} layer(s), "
             f"{a['hidden_size']} units" + (" per direction, bidirectional" if
                                            a.get("bidirectional") else "") +
             f" -> {a['pooling']} pooling -> linear. Trained with "
             f"the sentiment_lstm package {bundle.get('version', '')}, seed {cfg.get('seed')}.",
             "", "## Training data and its limits", "",
             f"IMDB (Maas et al. 2011): 25,000 labelled training reviews, "
             f"{data.get('val_fraction', 0.1):.0%} of them held out for validation"
             + (f", {data['limit']} per split (a quick run)" if data.get("limit") else "")
             + f"; a {data.get('tokenizer', 'word')}-level vocabulary of at most "
             f"{data.get('vocab_size', '?')} tokens. Reviews longer than "
             f"{bundle['data']['max_len']} tokens are cut (truncate="
             f"{bundle['data']['truncate']}). Movie reviews only, English only, two classes "
             "(no neutral); accuracy falls on long reviews (the table) and on other domains "
             "is unmeasured.", "", "## Results", ""]
    return "\n".join(lines + results_table(results)) + "\n"


def results_table(results: dict | None) -> list[str]:
    if not results or "test" not in results:
        return ["No test results: the run's results.json has no test split."]
    test = results["test"]
    rows = [f"Validation accuracy {results['val']['acc']:.4f}; IMDB test accuracy "
            f"{test['acc']:.4f}. Test accuracy by review length (tokens), 95% Wilson "
            "interval:", "", "| tokens | reviews | accuracy | 95% interval |", "|---|---|---|---|"]
    for name, b in test["acc_by_len"].items():
        lo, hi = b.get("ci95", (float("nan"), float("nan")))
        rows.append(f"| {name} | {b['n']} | {b['acc']:.4f} | {lo:.4f}-{hi:.4f} |")
    return rows
