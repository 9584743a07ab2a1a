"""The local spend queue: append-only segment files of checksummed records, and a committed offset.

One auth process owns one queue directory, ``<data_dir>/spend/<slot>/`` (see :func:`claim_directory`):

    00000000000000000001.log   segments, appended in order; a record never spans two
    00000000000000000002.log   the last one is the active segment, the only one appended to
    committed                  "<segment> <offset>\\n": every record before it is in the database
    lock                       held (flock) by the owning process for its whole life

A record is framed as ``length (u32, big endian) | crc32(payload) (u32) | payload``. An append
writes a whole group of records and fsyncs before anyone is told they are stored.

Crash recovery (:meth:`SpendLog.open`): segments before the committed one are deleted (a crash came
between the commit and the delete); each remaining segment is scanned from the committed offset,
and the records that frame and checksum correctly are kept. A torn tail (a crash in the middle of
an append, which was then never acknowledged) is cut off the last segment, so new appends follow
the last whole record; it is logged, not fatal. Garbage inside an older segment (a damaged disk)
skips the rest of that segment, also logged.

Compaction: once the active segment holds :data:`SEGMENT_BYTES` the next append starts a new one,
and a segment is deleted as soon as the committed offset passes it. So the files hold roughly what
is not yet in the database plus one segment.

The committed offset is written atomically (temporary file, fsync, rename, fsync of the directory).
A crash between a write to the database and its commit re-sends those records after the restart,
which the database ignores (rows are idempotent by request id).

Every method blocks on disk I/O: call them from one worker thread (not thread-safe).
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

SEGMENT_BYTES = 4 * 1024 * 1024
"""Size past which appends start a new segment."""
MAX_RECORD_BYTES = 16 * 1024 * 1024
"""Larger lengths cannot be one of our records: the frame is damaged."""
SLOTS = 64
"""Queue directories tried per data directory (processes that share one each take a free slot)."""

_HEADER = struct.Struct(">II")
_SUFFIX = ".log"
_COMMITTED = "committed"


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the queue: a byte offset in a segment."""

    segment: int
    offset: int


@dataclass(frozen=True, slots=True)
class Batch:
    """Records read from the queue, and the position just after them (commit it once written)."""

    payloads: list[bytes] = field(default_factory=list)
    end: Position = Position(1, 0)


def frame(payload: bytes) -> bytes:
    """One record as stored: length, checksum, payload."""
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def claim_directory(root: Path) -> tuple[Path, int]:
    """The first queue directory under ``root`` that no other process holds, and its lock descriptor.

    The lock lasts until the descriptor is closed (or the process exits). Raises ``OSError`` when
    all :data:`SLOTS` are held.
    """
    for slot in range(SLOTS):
        directory = root / str(slot)
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        return directory, descriptor
    raise OSError(f"every spend queue directory under {root} is held by another process")


class SpendLog:
    """The queue files of one directory: append at the end, read from a cursor, commit positions."""

    def __init__(self, directory: Path, segment_bytes: int, committed: Position, ends: dict[int, int]) -> None:
        self._directory = directory
        self._segment_bytes = segment_bytes
        self._committed = committed
        self._ends = ends
        """Valid end of each live segment, in order; the last key is the active segment."""
        self._cursor = committed
        self._reader: BinaryIO | None = None
        self._reader_segment = 0
        self._active = max(ends)
        self._writer = os.open(self._path(self._active), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    @classmethod
    def open(cls, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> SpendLog:
        """Open (or create) the queue in ``directory``, recovering from a crash as described above."""
        directory.mkdir(parents=True, exist_ok=True)
        segments = sorted(int(p.name.removesuffix(_SUFFIX)) for p in directory.glob(f"*{_SUFFIX}") if p.stem.isdigit())
        committed = _read_committed(directory / _COMMITTED)
        if committed is None or (segments and committed.segment < segments[0]):
            committed = Position(segments[0] if segments else 1, 0)
        for number in [s for s in segments if s < committed.segment]:
            (directory / _name(number)).unlink()
        live = [s for s in segments if s >= committed.segment] or [committed.segment]
        ends: dict[int, int] = {}
        for number in live:
            path = directory / _name(number)
            if not path.exists():
                path.touch(mode=0o600)
            start = committed.offset if number == committed.segment else 0
            if start > path.stat().st_size:
                log.error("spend queue: the committed offset lies past the end of %s; resending it", path.name)
                start, committed = 0, Position(number, 0)
            ends[number] = _recover(path, start, last=number == live[-1])
        _fsync_directory(directory)
        return cls(directory, segment_bytes, committed, ends)

    @property
    def committed(self) -> Position:
        return self._committed

    @property
    def end(self) -> Position:
        """The position after the last stored record."""
        return Position(self._active, self._ends[self._active])

    def segments(self) -> list[int]:
        """Numbers of the segment files on disk."""
        return sorted(self._ends)

    def append(self, payloads: list[bytes]) -> None:
        """Store ``payloads`` durably (written and fsync'd) at the end of the queue."""
        if not payloads:
            return
        if self._ends[self._active] >= self._segment_bytes:
            self._rotate()
        data = b"".join(frame(payload) for payload in payloads)
        view = memoryview(data)
        while view:
            written = os.write(self._writer, view)
            view = view[written:]
        os.fsync(self._writer)
        self._ends[self._active] += len(data)

    def read(self, limit: int) -> Batch:
        """Up to ``limit`` records after the read cursor, which moves past them.

        The cursor starts at the committed position; records read but not committed are read
        again after a restart, never twice by one process.
        """
        payloads: list[bytes] = []
        while len(payloads) < limit:
            end = self._ends[self._cursor.segment]
            if self._cursor.offset < end:
                payloads.extend(self._read_segment(limit - len(payloads), end))
                continue
            if self._cursor.segment == self._active:
                break
            self._cursor = Position(self._cursor.segment + 1, 0)
            while self._cursor.segment not in self._ends:  # a number skipped by a crash mid-rotation
                self._cursor = Position(self._cursor.segment + 1, 0)
        return Batch(payloads, self._cursor)

    def commit(self, position: Position) -> None:
        """Record that everything before ``position`` is in the database; delete passed segments."""
        if position <= self._committed:
            return
        _write_atomically(self._directory / _COMMITTED, f"{position.segment} {position.offset}\n".encode())
        self._committed = position
        for number in [s for s in self._ends if s < position.segment]:
            del self._ends[number]
            (self._directory / _name(number)).unlink(missing_ok=True)

    def close(self) -> None:
        os.close(self._writer)
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _read_segment(self, limit: int, end: int) -> list[bytes]:
        segment, offset = self._cursor.segment, self._cursor.offset
        reader = self._open_reader(segment)
        reader.seek(offset)
        payloads: list[bytes] = []
        while len(payloads) < limit and offset < end:
            payload = _read_frame(reader, end - offset)
            if payload is None:
                # Our own appends frame correctly; this is a damaged disk. No later record can be
                # found without a frame boundary, so the rest of the segment is given up.
                log.error("spend queue: damaged record in segment %d at byte %d; skipping the rest", segment, offset)
                offset = end
                break
            offset += _HEADER.size + len(payload)
            payloads.append(payload)
        self._cursor = Position(segment, offset)
        return payloads

    def _open_reader(self, segment: int) -> BinaryIO:
        if self._reader is None or self._reader_segment != segment:
            if self._reader is not None:
                self._reader.close()
            self._reader = open(self._path(segment), "rb")  # kept open between reads
            self._reader_segment = segment
        return self._reader

    def _rotate(self) -> None:
        os.close(self._writer)
        self._active += 1
        self._writer = os.open(self._path(self._active), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._ends[self._active] = 0
        _fsync_directory(self._directory)

    def _path(self, number: int) -> Path:
        return self._directory / _name(number)


def _name(number: int) -> str:
    return f"{number:020d}{_SUFFIX}"


def _read_frame(reader: BinaryIO, available: int) -> bytes | None:
    """The next record's payload, or None when the bytes there are not a whole valid record."""
    header = reader.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    length, checksum = _HEADER.unpack(header)
    if length > MAX_RECORD_BYTES or _HEADER.size + length > available:
        return None
    payload = reader.read(length)
    if len(payload) < length or zlib.crc32(payload) != checksum:
        return None
    return payload


def _recover(path: Path, start: int, *, last: bool) -> int:
    """The end of the last whole record of segment ``path`` from ``start``; cuts a torn tail off the last."""
    size = path.stat().st_size
    end = start
    with path.open("rb") as reader:
        reader.seek(start)
        while end < size and (payload := _read_frame(reader, size - end)) is not None:
            end += _HEADER.size + len(payload)
    if end < size:
        if last:
            log.warning("spend queue: skipped a torn record (%d bytes) at the end of %s", size - end, path.name)
            with path.open("r+b") as file:
                file.truncate(end)
                os.fsync(file.fileno())
        else:
            log.error("spend queue: %d damaged bytes at the end of %s skipped", size - end, path.name)
    return end


def _read_committed(path: Path) -> Position | None:
    try:
        segment, offset = path.read_text().split()
        return Position(int(segment), int(offset))
    except FileNotFoundError:
        return None
    except ValueError:
        log.error("spend queue: unreadable %s; resending every stored record", path.name)
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
