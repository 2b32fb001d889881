"""torchrun support: the process group, rank 0's run stamp, and collectives that are no-ops
in a single process.

    torchrun --standalone --nproc_per_node=2 -m sentiment_lstm.train

Every rank runs the same Hydra job. Rank 0's start time is shared before Hydra starts, so the
`${run_stamp:...}` in the output directory resolves alike on every rank: one directory per job.
"""

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import Tensor

from sentiment_lstm.config import STAMP_ENV


def launched() -> bool:
    """True in a process that torchrun started with more than one process in the job."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> int:
    """Join torchrun's process group and share rank 0's start time; returns this rank.

    The backend is gloo for CPU tensors and, where CUDA is present, NCCL for CUDA tensors.
    """
    if not launched():
        return 0
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    stamp = [time.time()]
    dist.broadcast_object_list(stamp, src=0)
    os.environ[STAMP_ENV] = repr(stamp[0])
    return dist.get_rank()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def local_device(name: str) -> torch.device:
    """`cuda` means this process's own GPU (LOCAL_RANK) under torchrun."""
    if name == "cuda" and launched():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(name)


def all_reduce(t: Tensor) -> Tensor:
    """Sum t in place over all ranks; a no-op in one process."""
    if dist.is_initialized():
        dist.all_reduce(t)
    return t


def gather(obj: Any) -> list[Any]:
    """Every rank's obj, in rank order, on every rank."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. fills a cache); the others follow once it is done."""
    if rank() != 0:
        barrier()
    yield
    if rank() == 0:
        barrier()


def finish(code: int | str | None = 0) -> NoReturn:
    """Leave the process group and end this torchrun worker with `code` (as `sys.exit` reads
    it), without finalizing the interpreter.

    A normal exit can abort (SIGABRT, "terminate called without an active exception"): with
    DDP the gloo group outlives `destroy_process_group` (torch 2.13), and a gloo worker thread
    that frees its last collective while the interpreter finalizes needs the GIL and aborts.
    How often is measured in docs/results.md, "Several processes and shared cores". So
    flush the logs and streams, then `os._exit`: nothing is left for
    finalization to do.
    """
    if dist.is_initialized():
        dist.destroy_process_group()
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
