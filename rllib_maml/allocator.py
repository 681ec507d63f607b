"""Keeps freed heap memory in the learner's process for reuse (glibc).

The meta-update allocates and frees tensors of several MB many times per pass
(about 10 MB each at the MAML paper's Navigation2D setting). By default glibc
serves such sizes with fresh `mmap` pages or trims them off the heap when
freed, so every pass page-faults and zero-fills its memory again; measured, that
was a fifth of the TRPO meta-update's time (`benchmarks/meta_update.py`). With
the two settings below freed blocks stay in the heap and are reused: the
process's resident memory stays at its peak instead of shrinking between
passes. `MAMLConfig.training(keep_freed_memory=False)` leaves glibc's defaults.
"""

from __future__ import annotations

import ctypes
import logging
import sys

logger = logging.getLogger(__name__)

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap (glibc caps it on some versions).
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
# Free memory at the top of the heap kept before it is returned to the OS.
TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Sets glibc's mmap and trim thresholds for this process.

    Returns:
        True if both were set; False where the C library is not glibc (not
        Linux, musl) or refused a value: nothing changes then.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    ok = (
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    )
    if not ok:
        logger.debug("mallopt refused the thresholds; glibc's defaults stay.")
    return ok
