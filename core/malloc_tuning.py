"""glibc's malloc thresholds for the web process: big response buffers reused, not faulted in afresh.

A WADO-RS whole-study answer reads its small instances into buffers of ~2 MiB
(dicomweb/body.py). glibc serves such a buffer by mmap and unmaps it when freed (its mmap
threshold adapts only up to the size last freed, and a run of a little more is mapped again),
then trims the heap's top: each buffer is faulted in page by page, zeroed by the kernel, and
the system time of a whole-study GET rose above the copy it saved (docs/benchmarks.md, "WADO-RS
per-instance cost"). Fixed thresholds above the buffers keep them in the heap, reused; the
memory a process may keep unused at its heap's top is bounded by TRIM_THRESHOLD_BYTES.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("prizmed.memory")

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 8 * 2**20  # allocations above this are mapped on their own: none of ours
TRIM_THRESHOLD_BYTES = 64 * 2**20  # unused memory at the heap's top kept at most, per process


def malloc_thresholds_set() -> bool:
    """Fix glibc's mmap and trim thresholds (mallopt(3)) for this process. False where the C
    library has no mallopt (not glibc) or refuses a value: the defaults then stay."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = all(mallopt(param, value) for param, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
                                                          (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)))  # fmt: skip
    if not done:
        log.warning("mallopt refused the thresholds; glibc's defaults stay")
    return done
