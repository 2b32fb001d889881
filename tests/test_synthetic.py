"""The generated long-range task (data=synthetic_long)."""

import json
import subprocess
import sys
from collections import Counter

import pytest

from sentiment_lstm.data.synthetic import CUES, DISTRACTORS, synthetic_long


def test_first_word_decides_the_label_and_distances_are_in_range():
    data = synthetic_long(reviews=200, min_distance=3, max_distance=30, noise=0.0, seed=1)
    for split in ("train", "test"):
        texts, labels = data[split]
        assert Counter(labels) == {0: 100, 1: 100}
        for text, y in zip(texts, labels):
            first, *rest = text.split()
            assert first in CUES[y]
            assert 3 <= len(rest) <= 30 and set(rest) <= set(DISTRACTORS)
    assert data["train"] != data["test"]
    assert synthetic_long(200, 3, 30, 0.0, seed=1) == data  # seeded


def test_noise_puts_cue_words_of_both_sentiments_among_the_distractors():
    texts, _ = synthetic_long(reviews=400, min_distance=50, max_distance=50, noise=0.1,
                              seed=0)["train"]
    later = Counter(w for t in texts for w in t.split()[1:])
    cues = [sum(later[w] for w in CUES[y]) for y in (0, 1)]
    assert sum(cues) / (400 * 50) == pytest.approx(0.1, abs=0.01)
    assert min(cues) > 0.4 * sum(cues)


def test_lstm_carries_the_cue_across_noisy_distractors_where_the_rnn_does_not(tmp_path):
    """experiment=synthetic_long at reduced size (one seed, a shorter run): the LSTM learns
    the task at every distance; the RNN stays near chance, most of all at long distances."""
    accs = {}
    for model in ("lstm", "rnn"):
        run = tmp_path / model
        proc = subprocess.run(
            [sys.executable, "-m", "sentiment_lstm.train", "experiment=synthetic_long",
             f"model={model}", "seed=0", "hydra.mode=RUN", f"hydra.run.dir={run}",
             f"data.cache_dir={tmp_path / 'cache'}", "trainer.progress=false",
             "trainer.threads=1"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        accs[model] = json.loads((run / "results.json").read_text())["test"]["acc_by_len"]
    for bucket in ("0050-0074", "0075-inf"):
        assert accs["lstm"][bucket]["acc"] > 0.95, accs
        assert accs["rnn"][bucket]["acc"] < 0.6, accs
