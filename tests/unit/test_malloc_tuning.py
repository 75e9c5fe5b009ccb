"""With glibc's thresholds fixed (core/malloc_tuning.py), buffers the size of a WADO-RS run are
reused from the heap, not mapped and faulted in afresh each time."""

from __future__ import annotations

import subprocess
import sys

# Buffers of a little over 2 MiB, each a little larger than the last (as the runs of a
# whole-study answer are), filled and freed in turn; prints the minor page faults they cost.
CHILD = r"""
import resource, sys
from core.malloc_tuning import malloc_thresholds_set
if sys.argv[1] == "tuned":
    assert malloc_thresholds_set()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for n in range(60):
    buffer = bytearray(2 * 2**20 + 4096 * n)
    del buffer
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_run_sized_buffers_are_reused_once_the_thresholds_are_set() -> None:
    default, tuned = _faults("default"), _faults("tuned")
    assert default > 60 * 256  # glibc's defaults: each buffer mapped anew, every page faulted in
    assert tuned < default / 20
