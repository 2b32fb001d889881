"""Where the model fails, in the event file: test PR curves per class, the confusion figure
and the most confidently wrong validation reviews as text, read back with EventAccumulator."""

import torch
from helpers import make_checkpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sentiment_lstm.data.tokenizer import encode
from sentiment_lstm.evaluation.failures import confidently_wrong
from sentiment_lstm.evaluation.scoring import split_probabilities
from sentiment_lstm.inference import load_classifier
from sentiment_lstm.reports.failures import strip, where_it_fails
from sentiment_lstm.reports.tracking import Tracker


def test_confidently_wrong_orders_by_confidence():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    assert confidently_wrong(probs, torch.tensor([1, 0, 0, 1]), 5) == [0, 1, 2]
    assert confidently_wrong(probs, torch.tensor([1, 0, 0, 1]), 1) == [0]


def test_strip_maps_probabilities_to_blocks():
    assert strip(torch.tensor([0.0, 0.5, 0.999, float("nan")]).numpy()) == "▁▅█·"


def test_event_file_holds_pr_curves_confusion_and_wrong_reviews(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.ckpt", bidirectional=True)
    clf = load_classifier(ckpt, "cpu")
    texts = ["a great superb film", "awful boring worst plot", "the movie was loved"] * 4
    split = encode(clf.tokenizer, texts, [1, 0, 1] * 4)
    tracker = Tracker(tmp_path / "run")
    probs = split_probabilities(clf.model, split, clf.max_len, clf.truncate, clf.device)
    where_it_fails(tracker, ckpt, {"test": split, "val": split}, probs, torch.device("cpu"), 7,
                   k=2)
    tracker.close()
    (events,) = (tmp_path / "run").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events), size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"test/pr_curve/neg", "test/pr_curve/pos",
            "val/most_confidently_wrong/text_summary"} <= set(tags["tensors"])
    assert "test/confusion" in tags["images"]
    (pr,) = acc.Tensors("test/pr_curve/pos")
    assert pr.step == 7 and pr.tensor_proto.tensor_shape.dim[0].size == 6  # TP..recall rows
    (text,) = acc.Tensors("val/most_confidently_wrong/text_summary")
    body = text.tensor_proto.string_val[0].decode()
    probs = clf.probabilities(texts)[0][:, 1]  # (N, classes) -> P(pos)
    wrong = ((probs >= 0.5).long() != torch.tensor([1, 0, 1] * 4)).sum()
    assert wrong >= 2 and body.count("**true ") == 2 and "running P(pos)" in body
