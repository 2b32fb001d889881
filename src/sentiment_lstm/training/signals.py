"""The signal flag that makes training stop after the current step and save, and the SLURM
requeue that follows a cluster's notice."""

import logging
import os
import signal
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

# SIGUSR1: the notice a cluster sends before the time limit or a preemption (SLURM's
# --signal=USR1@90, configs/hydra/launcher/slurm.yaml); handled like SIGTERM.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
NOTICE = signal.SIGUSR1


class Interrupted(RuntimeError):
    """A stop signal ended training after it saved last.ckpt."""


class StopSignal:
    """SIGINT / SIGTERM / SIGUSR1 set a flag; training stops after the current step and saves."""

    def __init__(self):
        self.received: int | None = None

    def __enter__(self) -> "StopSignal":
        self.previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def agree(self, signalled) -> bool:
        """Whether any rank was signalled (`signalled`: every rank's flag, summed). The ranks
        stop where this says, not at their own flags: a signal reaches them at slightly
        different times, and a rank that went on would wait in a collective the stopped one
        never joins."""
        if signalled and self.received is None:
            self.received = signal.SIGTERM  # another rank was signalled
        return bool(signalled)

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def requeue_slurm_job() -> str:
    """`scontrol requeue $SLURM_JOB_ID`: SLURM runs the same job again, which resumes from
    the last.ckpt just saved (trainer.requeue). Returns what happened, for the log and the
    exit message; outside SLURM it does nothing."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        what = "trainer.requeue: not a SLURM job (no SLURM_JOB_ID), not requeued"
    else:
        try:
            proc = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True,
                                  timeout=60)
            ok, detail = proc.returncode == 0, (proc.stderr or proc.stdout).strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            ok, detail = False, str(e)
        what = (f"trainer.requeue: requeued SLURM job {job}; it resumes this run directory"
                if ok else f"trainer.requeue: scontrol requeue {job} failed: {detail}")
    log.warning(what)
    return what


def stopped(signum: int, step: int, run: Path, requeue: bool) -> str:
    """The message a stopped run ends with: what stopped it, where it saved, how to go on;
    with `requeue`, a cluster's notice (SIGUSR1, not a user's Ctrl-C or kill) requeues it."""
    requeued = f"; {requeue_slurm_job()}" if requeue and signum == NOTICE else ""
    return (f"{signal.Signals(signum).name}: stopped at step {step} and saved "
            f"{run / 'last.ckpt'}; resume with: python -m sentiment_lstm.train "
            f"trainer.resume={run}{requeued}")
