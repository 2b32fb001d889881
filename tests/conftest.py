import io
import random
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_TARBALL = ROOT.parent / "shared" / "data" / "aclImdb_v1_labeled.tar.gz"

POSITIVE = ["great", "wonderful", "superb", "loved", "excellent"]
NEGATIVE = ["awful", "terrible", "boring", "hated", "worst"]
FILLER = ["the", "movie", "plot", "actor", "scene", "and", "a", "was", "film", "it"]


def make_review(label: int, rng: random.Random, words: int = 30) -> str:
    cue = POSITIVE if label else NEGATIVE
    body = [rng.choice(FILLER) for _ in range(words)]
    for _ in range(3):
        body.insert(rng.randrange(len(body)), rng.choice(cue))
    return " ".join(body).capitalize() + ".<br /><br />The End"


def make_tarball(path: Path, per_label: int = 20, seed: int = 0) -> Path:
    """A tiny aclImdb_v1.tar.gz look-alike with generated reviews (no real review text)."""
    rng = random.Random(seed)
    with tarfile.open(path, "w:gz") as tf:
        for split in ("train", "test"):
            for label, name in ((0, "neg"), (1, "pos")):
                for i in range(per_label):
                    text = make_review(label, rng, words=rng.randint(5, 60)).encode()
                    info = tarfile.TarInfo(f"aclImdb/{split}/{name}/{i}_{8 if label else 2}.txt")
                    info.size = len(text)
                    tf.addfile(info, io.BytesIO(text))
    return path


@pytest.fixture
def tiny_tarball(tmp_path) -> Path:
    return make_tarball(tmp_path / "aclImdb_v1.tar.gz")


@pytest.fixture(scope="session")
def real_tarball() -> Path:
    assert REAL_TARBALL.is_file(), f"the real data set must be at {REAL_TARBALL}"
    return REAL_TARBALL


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch):
    """Tests name their data explicitly; a developer's $SENTIMENT_LSTM_DATA must not leak in."""
    monkeypatch.delenv("SENTIMENT_LSTM_DATA", raising=False)
