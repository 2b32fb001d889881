from pathlib import Path

import pytest
from helpers import REAL_TARBALL, make_tarball


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
