import os

import pytest

from sentiment_lstm.checkpoint import FORMAT, load_bundle
from sentiment_lstm.io import atomic_save, atomic_write_text


def test_atomic_save_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_save({"format": FORMAT, "step": 1}, path)
    atomic_save({"format": FORMAT, "step": 2}, path)
    assert load_bundle(path)["step"] == 2
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_failed_save_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_save({"format": FORMAT, "step": 1}, path)
    with pytest.raises(Exception, match="pickle"):
        atomic_save({"format": FORMAT, "bad": lambda: 0}, path)  # cannot be pickled
    assert load_bundle(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_failed_text_write_keeps_previous_file(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_text('{"step": 1}', path)
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text('{"step": 2, "bad": "\ud800"}', path)  # a lone surrogate
    assert path.read_text() == '{"step": 1}'
    assert os.listdir(tmp_path) == ["results.json"]


def test_atomic_save_gives_the_file_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_save({"x": 1}, tmp_path / "a.ckpt")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.ckpt").stat().st_mode & 0o777 == 0o644
