"""Ask the kernel to read the next block of a memory-mapped array while the current one is computed.

Reading a memory map faults pages in synchronously, so a single-threaded pass alternates between
waiting for the disk and computing. ``posix_fadvise(WILLNEED)`` on the next block's byte range
starts an asynchronous read into the page cache, so disk and CPU overlap and a pass over data that
is not cached costs about max(read, compute) instead of read + compute. It is a hint: where it is
unavailable (not a top-level ``np.memmap``, non-POSIX system) nothing happens.
"""

from __future__ import annotations

import mmap
import os

import numpy as np


class ReadAhead:
    """``advise(start, stop)`` hints that rows [start, stop) of each given array will be read soon."""

    def __init__(self, *arrays: np.ndarray) -> None:
        self._targets: list[tuple[int, int, int]] = []  # (fd, file offset of row 0, bytes per row)
        if not hasattr(os, "posix_fadvise"):
            return
        for arr in arrays:
            # only a memmap that owns its mapping knows its true file offset (views inherit the parent's)
            if not isinstance(arr, np.memmap) or not isinstance(arr.base, mmap.mmap) or not arr.flags.c_contiguous:
                continue
            if getattr(arr, "filename", None) is None or arr.ndim == 0 or arr.shape[0] == 0:
                continue
            try:
                fd = os.open(arr.filename, os.O_RDONLY)
            except OSError:
                continue
            self._targets.append((fd, int(arr.offset), int(arr.strides[0])))

    def advise(self, start: int, stop: int) -> None:
        for fd, offset, row_bytes in self._targets:
            try:
                os.posix_fadvise(fd, offset + start * row_bytes, (stop - start) * row_bytes, os.POSIX_FADV_WILLNEED)
            except OSError:
                pass

    def close(self) -> None:
        for fd, _, _ in self._targets:
            os.close(fd)
        self._targets = []

    def __enter__(self) -> "ReadAhead":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
