import os

import pytest
import torch

from sentiment_lstm.checkpoint import (
    FORMAT,
    CheckpointError,
    atomic_save,
    atomic_write_text,
    load_bundle,
)


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


def test_run_directory_resolves_to_best(tmp_path):
    atomic_save({"format": FORMAT, "which": "best"}, tmp_path / "best.ckpt")
    atomic_save({"format": FORMAT, "which": "last"}, tmp_path / "last.ckpt")
    assert load_bundle(tmp_path)["which"] == "best"


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("case", ["missing", "empty_dir", "truncated", "text", "pickle", "other"])
def test_bad_checkpoints_raise_one_clear_error(tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "x.ckpt"
    if case == "empty_dir":
        path = tmp_path / "run"
        path.mkdir()
    elif case == "truncated":
        atomic_save({"format": FORMAT, "w": torch.randn(1000)}, path)
        path.write_bytes(path.read_bytes()[:500])
    elif case == "text":
        path.write_text("hello")
    elif case == "pickle":
        torch.save({"format": FORMAT, "evil": Evil()}, path)
        assert not (tmp_path / "pwned").exists()
    elif case == "other":
        torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError) as err:
        load_bundle(path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "pwned").exists()  # a pickled object is refused, never run


def test_atomic_save_gives_the_file_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_save({"x": 1}, tmp_path / "a.ckpt")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.ckpt").stat().st_mode & 0o777 == 0o644
