"""Train a classifier: the Hydra CLI around sentiment_lstm.training.trainer.fit.

    python -m sentiment_lstm.train model=rnn trainer.max_epochs=3
    python -m sentiment_lstm.train -m model=lstm,rnn seed=0,1,2
    python -m sentiment_lstm.train trainer.resume=auto      # continue the newest unfinished run
    torchrun --standalone --nproc_per_node=2 -m sentiment_lstm.train   # data-parallel
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.config import ConfigError, register
from sentiment_lstm.data.types import DataError
from sentiment_lstm.io import InputError
from sentiment_lstm.runtime import distributed
from sentiment_lstm.training.trainer import Interrupted, TrainingError, fit


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def run(cfg: DictConfig) -> float:
    try:
        hydra_cfg = HydraConfig.get()
        results = fit(cfg, hydra_cfg.runtime.output_dir, hydra_cfg.overrides.task)
    except Interrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        sys.exit(130)
    except (ConfigError, DataError, InputError, CheckpointError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return results["val"]["acc"]


def main() -> None:
    """The CLI. Under torchrun: join the process group first; rank 0 alone writes Hydra's
    files and the log file, the other ranks log warnings to the console."""
    register()
    if not distributed.launched():
        run()
        return
    if distributed.init():
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=stdout",
                     "hydra.job_logging.root.level=WARNING"]
    try:
        run()
    except SystemExit as e:  # Hydra's 1 and run()'s 2 and 130
        distributed.finish(e.code)
    distributed.finish(0)


if __name__ == "__main__":
    main()
