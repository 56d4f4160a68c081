"""Streaming a sampler's rows to a file from a background writer: ``record(sampler, path)``.

The writer wakes every ``chunk_s`` seconds, copies the rows taken since its last visit
out of the ring (``Sampler.data_from``, which says how many were overwritten first), and
appends them as one chunk. Memory stays at one chunk however long the run; no row is lost
while a chunk's worth of rows fits in the ring, and when one does not, the file records
the gap (``Recording.gaps``) instead of joining the rows across it.
"""

from __future__ import annotations

import os
import threading
from typing import Union

from pycgroup.export.files import Gap, NpzWriter, ParquetWriter, PathLike, _format_of, header
from pycgroup.marks import Mark
from pycgroup.sampler import Sampler


class Recorder:
    """Drains a sampler into a file until ``close()`` (or the end of a ``with`` block).
    Use ``record(sampler, path)`` to make one."""

    def __init__(self, sampler: Sampler, path: PathLike, chunk_s: float = 1.0):
        if not chunk_s > 0:
            raise ValueError(f"chunk_s must be > 0, not {chunk_s!r}")
        self.path = os.fspath(path)
        self.sampler = sampler
        self.chunk_s = float(chunk_s)
        self._format = _format_of(self.path)
        self.position = 0  # the ring position of the next row to write
        self.rows = 0  # rows written
        self.lost = 0  # rows overwritten before the writer reached them
        self.chunks = 0
        self.error: BaseException | None = None  # what stopped the writer, if anything
        # the newest mark written, as (t_ns, label): marks are taken after it
        self._last_mark: tuple[object, ...] | None = None
        self._last_t_ns: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started_sampler = False
        self._thread: threading.Thread | None = None
        self._writer: Union[NpzWriter, ParquetWriter, None] = None

    def start(self) -> "Recorder":
        """Opens the file, starts the sampler if it is not running, and the writer."""
        empty, _ = self.sampler.data_from(2**62)
        meta = header(empty, "stream")
        if self._format == ".npz":
            self._writer = NpzWriter(self.path, meta)
        else:
            self._writer = ParquetWriter(self.path, meta, empty)
        if not self.sampler.running:
            self.sampler.start()
            self._started_sampler = True
        self._thread = threading.Thread(target=self._run, name="pycgroup-recorder",
                                        daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.chunk_s):
                self.flush()
        except BaseException as e:  # noqa: BLE001 - kept for close() to raise
            self.error = e

    def flush(self) -> int:
        """Writes the rows taken since the last flush now; returns how many."""
        with self._lock:
            samples, first = self.sampler.data_from(self.position)
            gaps: list[Gap] = []
            if first > self.position:
                lost = first - self.position
                self.lost += lost
                after = self._last_t_ns if self._last_t_ns is not None else -1
                before = int(samples.t_ns[0]) if len(samples) else -1
                gaps.append(Gap(after, before, lost))
            rows = samples.to_numpy()
            if not len(rows) and not gaps:
                return 0
            if len(rows):
                self._last_t_ns = int(rows[-1, 0])
            self.position = first + len(rows)
            marks = self._new_marks(self._last_t_ns)
            assert self._writer is not None  # flushes happen between start() and close()
            self._writer.write_chunk(rows, marks, gaps)
            self.rows += len(rows)
            self.chunks += 1
            return len(rows)

    def _new_marks(self, until_ns: int | None, final: bool = False) -> list[Mark]:
        """Returns the marks newer than the last one written, up to until_ns (all of them
        when final). Marks are compared as (t_ns, label), so a bounded mark store that
        forgets old ones does not shift what counts as new."""
        marks = [m for m in self.sampler.marks()
                 if self._last_mark is None or tuple(m) > self._last_mark]
        if not final:
            marks = [m for m in marks if until_ns is not None and m.t_ns <= until_ns]
        if marks:
            self._last_mark = tuple(marks[-1])
        return marks

    def close(self) -> None:
        """Stops the writer, writes what is left (and the sampler's final counters), and
        closes the file; stops the sampler if start() started it. Raises what stopped the
        writer early, if anything."""
        if self._writer is None:
            return
        self._stop.set()
        assert self._thread is not None  # started with the writer
        self._thread.join()
        if self._started_sampler:
            self.sampler.stop()
        try:
            if self.error is None:
                self.flush()
                marks = self._new_marks(None, final=True)
                if marks:
                    with self._lock:
                        self._writer.write_chunk(
                            self.sampler.data_from(2**62)[0].to_numpy(), marks, [])
                        self.chunks += 1
                stats = self.sampler.stats
                self._writer.finish(stats={
                    "samples": stats.samples, "dropped": stats.dropped,
                    "overruns": stats.overruns, "read_errors": stats.read_errors,
                    "lost_by_writer": self.lost})
        finally:
            self._writer.close()
            self._writer = None
        if self.error is not None:
            raise self.error

    def __enter__(self) -> "Recorder":
        return self.start() if self._writer is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record(sampler: Sampler, path: PathLike, chunk_s: float = 1.0) -> Recorder:
    """Returns a started Recorder streaming sampler's rows (and marks) to path (``.npz``,
    readable up to its last chunk after a crash, or ``.parquet``, readable once closed).
    Use it as a context manager, or call ``close()``::

        with pycgroup.Sampler(hz=1000) as s, pycgroup.record(s, "run.npz"):
            train()
    """
    return Recorder(sampler, path, chunk_s).start()
