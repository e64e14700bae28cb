"""Safe, lazy access to ``.npz`` archives: headers without loading, no unpickling, memory maps.

``np.load`` on an ``.npz`` reads a whole member into memory and gives unhelpful errors on damaged
files. This reader looks at each member's ``.npy`` header first (shape and dtype, so object arrays
are recognised before anything is unpickled), memory-maps members stored uncompressed (the
``np.savez`` default) and turns every archive failure into a one-line :class:`InputError`.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from lvmdiag.data.validate import ARCHIVE_ERRORS, corrupt_error
from lvmdiag.errors import InputError

_NPY_MAGIC = b"\x93NUMPY"
#: misaligned members up to this size are read into memory rather than memory-mapped
UNALIGNED_READ_BYTES = 2 * 2**30
#: memory-mapped members up to this size get their zip CRC-32 checked (as np.load would); larger
#: ones are not, since the check costs a full read at about 1.5 GB/s
CRC_CHECK_BYTES = 512 * 2**20
_ZIP_MAGIC = b"PK\x03\x04"


class NpzArchive:
    """An open ``.npz`` file. Use as a context manager; memory maps stay valid after closing."""

    def __init__(self, path: str | os.PathLike[str], label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label or str(path)
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            raise InputError(f"{self.label} cannot be opened ({exc.strerror or exc}); check the path.") from exc
        if size == 0:
            raise InputError(f"{self.label} is empty (0 bytes): the file was not written completely; regenerate it.")
        with open(self.path, "rb") as fh:
            head = fh.read(8)
        if head.startswith(_NPY_MAGIC):
            raise InputError(
                f"{self.label} is a single .npy array, not an .npz archive: put contexts.npy and targets.npy "
                "in one directory and pass the directory."
            )
        if not head.startswith(b"PK"):
            raise InputError(
                f"{self.label} is not an .npz archive (it does not start with a zip header): "
                "save the arrays with np.savez."
            )
        try:
            self._zip = zipfile.ZipFile(self.path)
            infos = self._zip.infolist()
        except ARCHIVE_ERRORS as exc:
            raise corrupt_error(self.label, None, exc) from exc
        self._infos = {i.filename[:-4] if i.filename.endswith(".npy") else i.filename: i for i in infos}
        self._headers: dict[str, tuple[tuple[int, ...], bool, np.dtype]] = {}

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def keys(self) -> list[str]:
        return list(self._infos)

    def __contains__(self, key: str) -> bool:
        return key in self._infos

    def header(self, key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
        """``(shape, fortran_order, dtype)`` of a member, read from its header only."""
        if key not in self._headers:
            try:
                with self._zip.open(self._infos[key]) as fp:
                    version = np.lib.format.read_magic(fp)
                    reader = (
                        np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    )
                    self._headers[key] = reader(fp)
            except ARCHIVE_ERRORS as exc:
                raise corrupt_error(self.label, key, exc) from exc
        return self._headers[key]

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.header(key)[0])

    def dtype(self, key: str) -> np.dtype:
        return np.dtype(self.header(key)[2])

    def read(self, key: str, allow_pickle: bool = False, mmap: bool = True) -> np.ndarray:
        """The member as an array; memory-mapped when stored uncompressed (and ``mmap``)."""
        info = self._infos[key]
        shape, fortran, dtype = self.header(key)
        if mmap and info.compress_type == zipfile.ZIP_STORED and not dtype.hasobject and int(np.prod(shape)) > 0:
            arr = self._memmap(key, info, shape, fortran, dtype)
            if arr is not None:
                return arr
        try:
            with self._zip.open(info) as fp:
                return np.lib.format.read_array(fp, allow_pickle=allow_pickle)
        except ARCHIVE_ERRORS as exc:
            raise corrupt_error(self.label, key, exc) from exc

    def _check_crc(self, key: str, info: zipfile.ZipInfo, start: int, size: int) -> None:
        """Compare the member's stored CRC-32 with its bytes (a memory map bypasses zipfile's check)."""
        crc = 0
        with open(self.path, "rb") as fh:
            fh.seek(start)
            left = size
            while left:
                chunk = fh.read(min(left, 16 * 2**20))
                if not chunk:
                    break
                crc = zlib.crc32(chunk, crc)
                left -= len(chunk)
        if size != info.file_size or crc != info.CRC:
            raise InputError(
                f"`{key}` in {self.label} fails its zip checksum (CRC-32): the file is corrupt; copy or regenerate it."
            )

    def _memmap(
        self, key: str, info: zipfile.ZipInfo, shape: tuple[int, ...], fortran: bool, dtype: np.dtype
    ) -> np.ndarray | None:
        """Map an uncompressed member in place; None when its layout is unusual (then it is read)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(info.header_offset)
                local = fh.read(30)
                if len(local) < 30 or local[:4] != _ZIP_MAGIC:
                    return None
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                start = info.header_offset + 30 + name_len + extra_len
                fh.seek(start)
                version = np.lib.format.read_magic(fh)
                reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                reader(fh)
                offset = fh.tell()
        except ARCHIVE_ERRORS:
            return None
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if offset % max(dtype.alignment, 1) and nbytes <= UNALIGNED_READ_BYTES:
            # np.savez does not align member data: a misaligned map makes every numpy kernel take a
            # slow path (about 3x), so members that fit comfortably in memory are read instead
            return None
        if offset + nbytes > self.path.stat().st_size:
            raise InputError(
                f"`{key}` in {self.label} is cut short ({self.path.stat().st_size - offset} of {nbytes} bytes present): "
                "the file is truncated; copy or regenerate it."
            )
        if offset - start + nbytes <= CRC_CHECK_BYTES:
            self._check_crc(key, info, start, offset - start + nbytes)
        return np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
