import os

import pytest
import torch

from sentiment_lstm.checkpoint import FORMAT, CheckpointError, load_bundle
from sentiment_lstm.io import atomic_save


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


def test_a_bundle_naming_the_path_fused_loads_with_its_kernel(tmp_path):
    for fused, kernel in ((True, "auto"), (False, "loop")):
        torch.save({"format": FORMAT, "model_args": {"fused": fused},
                    "config": {"model": {"fused": fused}}}, tmp_path / "old.ckpt")
        bundle = load_bundle(tmp_path / "old.ckpt")
        assert bundle["model_args"] == {"kernel": kernel} == bundle["config"]["model"]
