"""What a resumable checkpoint costs: the default model (or any overrides) on the given data,
last.ckpt saved N times, against the time of an epoch estimated from timed training steps.

    python scripts/checkpoint_cost.py data.path=aclImdb_v1.tar.gz [--saves 10] [--steps 20]
"""

import argparse
import statistics
import tempfile
import time
from itertools import islice
from pathlib import Path

from hydra import compose, initialize_config_dir

import sentiment_lstm
from sentiment_lstm.config import register
from sentiment_lstm.data.batching import batches
from sentiment_lstm.training.schedule import CheckpointCadence
from sentiment_lstm.training.signals import StopSignal
from sentiment_lstm.training.trainer import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--saves", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20, help="training steps timed")
    args = ap.parse_args()
    register()
    configs = str(Path(sentiment_lstm.__file__).parent / "configs")
    with initialize_config_dir(config_dir=configs, version_base="1.3"):
        cfg = compose("config", overrides=args.overrides)
    with tempfile.TemporaryDirectory() as out:
        t = Trainer(cfg, Path(out), None)
        t.setup_runtime()
        t.setup_data()
        t.setup_model()
        t.setup_tracking()
        t.cadence, t.stop, t.window_tokens = CheckpointCadence(0, 0), StopSignal(), 0
        d = cfg.data
        t.net.train()
        todo = batches(t.splits["train"], islice(t.sampler, args.steps + 1), d.max_len,
                       d.truncate)
        t.train_step(next(todo))  # the first step allocates: not timed
        start = time.perf_counter()
        for batch in todo:
            t.train_step(batch)
        step_s = (time.perf_counter() - start) / args.steps
        saves = []
        for _ in range(args.saves):  # with the optimizer's state, as mid-training
            start = time.perf_counter()
            t.save_last()
            saves.append(time.perf_counter() - start)
        size = (Path(out) / "last.ckpt").stat().st_size
        t.tracker.close()
    epoch_s = step_s * len(t.sampler)
    save_s = statistics.median(saves)
    print(f"last.ckpt {size / 2**20:.1f} MiB ({t.n_params:,} parameters): save median "
          f"{save_s:.3f} s, min {min(saves):.3f} s, max {max(saves):.3f} s over {args.saves}")
    print(f"training step {step_s:.3f} s (mean of {args.steps}); epoch of {len(t.sampler)} "
          f"steps ~{epoch_s:.0f} s; one save = {100 * save_s / epoch_s:.2f}% of an epoch; "
          f"every 10 min: {100 * save_s / 600:.3f}% of training time")


if __name__ == "__main__":
    main()
