"""Train a classifier: the Hydra CLI around sentiment_lstm.training.trainer.fit.

    python -m sentiment_lstm.train model=rnn trainer.max_epochs=3
    python -m sentiment_lstm.train -m model=lstm,rnn seed=0,1,2
    python -m sentiment_lstm.train -m hparams_search=lstm_optuna   # an Optuna study
    python -m sentiment_lstm.train trainer.resume=auto      # continue the newest unfinished run
    torchrun --standalone --nproc_per_node=2 -m sentiment_lstm.train   # data-parallel
"""

import os
import sys
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.config import STAMP_ENV, ConfigError, register
from sentiment_lstm.data.types import DataError
from sentiment_lstm.io import InputError
from sentiment_lstm.overrides import check
from sentiment_lstm.runtime import distributed
from sentiment_lstm.training.signals import Interrupted
from sentiment_lstm.training.state import TrainingError
from sentiment_lstm.training.trainer import fit

ERRORS = (ConfigError, DataError, InputError, CheckpointError, TrainingError)


class JobFailed(CompactHydraException):
    """A sweep's job that failed on bad input or a non-finite loss. An Exception, so the
    sweeper records a failed job (Optuna: a failed trial) and goes on; Hydra prints its one
    line, no traceback, if the sweep ends on it."""


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def run(cfg: DictConfig) -> float:
    """The task function: a sweep's objective is the best validation accuracy."""
    hydra_cfg = HydraConfig.get()
    try:
        results = fit(cfg, hydra_cfg.runtime.output_dir, hydra_cfg.overrides.task)
    except Interrupted as e:  # a signal stops the sweep too: SystemExit is no job failure
        print(f"interrupted: {e}", file=sys.stderr)
        sys.exit(130)
    except ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise JobFailed(f"error: {e}") from e
        sys.exit(2)
    return results["val"]["acc"]


def main() -> None:
    """The CLI. Under torchrun: join the process group first; rank 0 alone writes Hydra's
    files and the log file, the other ranks log warnings to the console."""
    register()
    try:  # one line for a bad override, where Hydra would print its multi-line report
        check(sys.argv[1:])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if not distributed.launched():
        # One start time for the run_stamp resolver, fixed before any job starts: a sweep's
        # job that a cluster requeues (it inherits this environment) resolves the same run
        # directory and resumes there (trainer.requeue).
        os.environ.setdefault(STAMP_ENV, repr(time.time()))
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
