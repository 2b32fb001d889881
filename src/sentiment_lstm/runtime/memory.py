"""Keep freed memory in the process for reuse.

A training step frees and reallocates tens of MB of activations whose sizes change with every
length-bucketed batch. glibc's malloc serves blocks that large with mmap and hands them back
to the kernel when freed, so the next step faults every page in again and the kernel zeroes
it (measured in docs/results.md, "Memory reuse in the training loop").
"""

import ctypes

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters, glibc's malloc.h


def reuse_freed_memory() -> bool:
    """Have glibc's malloc serve every block from its heap and keep freed memory there instead
    of returning it to the kernel. Process-wide; the peak memory stays mapped until exit.
    Returns False, changing nothing, where the C library has no glibc mallopt."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
