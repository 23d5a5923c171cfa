"""The peak memory of a test's child process (for the memory-cap tests)."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss() -> int:
    """Return this process's own peak resident set size in bytes.

    Linux's ``ru_maxrss`` keeps the high-water mark of the process image replaced by
    ``exec``: a child started by ``subprocess`` (vfork + exec) from a pytest worker
    that has grown to 1.6 GB reports the worker's peak. ``VmHWM`` belongs to the
    running image only.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
