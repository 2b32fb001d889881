"""The trainer's steps: the default recipe's losses are pinned, and its state round-trips
through a checkpoint."""

import pytest
import torch
from helpers import compose_config, make_tarball, scalars

from sentiment_lstm.training.state import EpochSums, TrainState
from sentiment_lstm.training.trainer import fit

# train/loss (the epoch's running mean) after each of the first 20 steps of the default
# recipe on make_tarball(per_label=40), batches of 8, on CPU. Bit-identical on one machine
# from version to version; other CPUs' GEMM kernels may round differently in the last digits.
PINNED = [0.6711040735244751, 0.6953008770942688, 0.7251996397972107, 0.7116795182228088,
          0.7053850293159485, 0.7117020487785339, 0.7158120274543762, 0.7064692974090576,
          0.7101778388023376, 0.7356403470039368, 0.7264368534088135, 0.7055070996284485,
          0.7133305072784424, 0.7046245336532593, 0.6973962783813477, 0.7000548243522644,
          0.6985150575637817, 0.690513551235199, 0.6766076683998108, 0.6485022306442261]


def test_default_recipe_first_20_losses_are_pinned(tmp_path):
    tar = make_tarball(tmp_path / "a.tar.gz", per_label=40)
    cfg = compose_config(f"data.path={tar}", f"data.cache_dir={tmp_path / 'cache'}",
                         "data.batch_size=8", "trainer.max_epochs=3", "trainer.log_every=1",
                         "trainer.progress=false", "trainer.test=false", "trainer.device=cpu")
    fit(cfg, tmp_path / "run")
    assert scalars(tmp_path / "run")["train/loss"][:20] == pytest.approx(PINNED, rel=1e-5,
                                                                         abs=0)


def test_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    state = TrainState(epoch=2, batch=3, step=17, best_acc=0.75, best_epoch=1,
                       history=[{"epoch": 0, "val_acc": 0.5}], world=2,
                       sums=EpochSums(1.5, 3.0, 4.0))
    torch.save(state.to_dict(), tmp_path / "s.pt")
    assert TrainState.from_dict(torch.load(tmp_path / "s.pt", weights_only=True)) == state
    legacy = {**state.to_dict(), "sums": [1.5, 3.0, 4.0]}  # the list form older files hold
    assert TrainState.from_dict(legacy) == state
