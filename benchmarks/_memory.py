"""Memory measurement shared by the benchmarks: /proc fields, a background RssAnon peak sampler, and
dropping files from the page cache (for cold-read runs).

RssAnon is the process's own memory; pages of memory-mapped inputs are file-backed (RssFile, the
page cache the kernel reclaims at will), so "memory beyond the map" is the RssAnon peak.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterable


def status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (RssAnon, VmHWM, ...); 0 when absent."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def drop_from_page_cache(files: Iterable[Path]) -> None:
    """Drop the files' clean pages from the page cache (``posix_fadvise(DONTNEED)``: no root needed),
    so the next read comes from disk."""
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages are not dropped: write them first
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def meminfo_kb(field: str) -> int:
    """A field of /proc/meminfo in kB (MemTotal, Cached, ...); 0 when absent."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class AnonPeak:
    """Samples RssAnon in a background thread; ``peak_mb`` is the maximum above the starting value."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.base = status_kb("RssAnon")
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status_kb("RssAnon"))
            time.sleep(self.interval)

    def __enter__(self) -> "AnonPeak":
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, status_kb("RssAnon"))

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.base) / 1024
