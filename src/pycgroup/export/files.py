"""Recordings on disk: ``save(path, samples, steps=None, marks=None)`` and ``load(path)``.

Two formats, chosen by the file's suffix:

- ``.npz`` (numpy only): a zip of ``.npy`` members that ``numpy.load`` also opens. The
  first member, ``pycgroup.npy``, is a JSON header (format name and version, metrics,
  units, kinds, where and how the rows were recorded); rows, marks and gaps follow in
  numbered chunks (``rows.000000.npy``, ``marks_t_ns.000000.npy``, ...), so a streaming
  writer only ever appends; ``end.npy`` closes a finished file. A streamed file whose
  writer died (``kill -9``) has no zip directory and no ``end.npy``: ``load`` reads its
  members from their local headers up to the last whole chunk and says so
  (``Recording.complete`` is False).
- ``.parquet`` (pyarrow, ``pip install "pycgroup[parquet]"``): ``t_ns``, ``time`` (wall
  clock) and one int64 column per metric (null where the value was missing), with the
  header, marks, gaps and steps as JSON under the ``pycgroup`` key of the schema
  metadata. Streamed files get one row group per chunk.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple, Sequence, Union

import numpy as np

from pycgroup import catalogue
from pycgroup._version import __version__
from pycgroup._extras import require
from pycgroup.errors import NewerRecordingFormat, NotARecording, TruncatedRecording
from pycgroup.formats import MISSING
from pycgroup.marks import Mark
from pycgroup.samples import ClockAnchor, Origin, Samples

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pycgroup.steps import Steps, StepTable

#: A file name: a str or a path-like object.
PathLike = Union[str, "os.PathLike[str]"]
#: A recording's JSON header (and end member): what json.loads returns.
Meta = dict[str, Any]

FORMAT = "pycgroup-recording"
#: Bumped when a change would make an older pycgroup misread a file.
FORMAT_VERSION = 1
SUFFIXES = (".npz", ".parquet")
HEADER = "pycgroup"
END = "end"


class Gap(NamedTuple):
    """Rows a streaming writer lost because the ring overwrote them before it drained."""

    after_ns: int  # t_ns of the last row written before the gap
    before_ns: int  # t_ns of the first row written after it
    rows: int  # how many rows are missing


@dataclass(frozen=True)
class Recording:
    """A recording loaded from a file.

    ``samples`` holds the rows (with ``samples.origin`` when the file has one), ``marks``
    the labelled instants, ``steps`` a table (column -> array) or None, ``gaps`` the rows
    a streaming writer lost. ``complete`` is False for a streamed file whose writer did
    not finish (it holds the rows up to its last flushed chunk)."""

    path: str
    samples: Samples
    marks: tuple[Mark, ...]
    steps: StepTable | None
    gaps: tuple[Gap, ...]
    units: dict[str, str]
    kinds: dict[str, str]
    pycgroup_version: str
    format_version: int
    complete: bool
    stats: dict[str, int] | None  # the sampler's counters when the writer finished

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.samples.columns

    @property
    def origin(self) -> Origin | None:
        return self.samples.origin

    @property
    def limits(self) -> dict[str, Any] | None:
        return None if self.origin is None else self.origin.limits

    @property
    def clock_anchor(self) -> ClockAnchor | None:
        return None if self.origin is None else self.origin.clock_anchor


# --- the header, shared by both formats ---------------------------------------------

def header(samples: Samples, layout: str) -> Meta:
    """Returns the JSON header describing samples; layout is "file" or "stream"."""
    origin = samples.origin
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "layout": layout,
        "pycgroup_version": __version__,
        "metrics": list(samples.columns),
        "derived": list(samples.derived),
        "units": {n: _catalogue(catalogue.unit, n) for n in samples.columns},
        "kinds": {n: _catalogue(catalogue.kind, n) for n in samples.columns},
        "effective_memory_bytes": samples.effective_memory_bytes,
        "cpu_limit_cores": samples.cpu_limit_cores,
        "origin": None if origin is None else {
            "cgroup_mode": origin.cgroup_mode, "cgroup_paths": origin.cgroup_paths,
            "pid": origin.pid, "hostname": origin.hostname, "period_ns": origin.period_ns,
            "limits": {k: list(v) if isinstance(v, tuple) else v
                       for k, v in origin.limits.items()},
            "clock_anchor": {"realtime_ns": origin.clock_anchor.realtime_ns,
                             "monotonic_ns": origin.clock_anchor.monotonic_ns}},
    }


def _catalogue(function: Callable[[str], str], name: str) -> str:
    try:
        return function(name)
    except KeyError:
        return ""


def _check_header(path: str, meta: object) -> Meta:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise NotARecording(path, "not a pycgroup recording (its header names no "
                                  f"{FORMAT!r} format)")
    version = meta.get("version")
    if not isinstance(version, int):
        raise NotARecording(path, f"not a pycgroup recording (format version {version!r})")
    if version > FORMAT_VERSION:
        raise NewerRecordingFormat(
            path, f"written in recording format version {version} by pycgroup "
                  f"{meta.get('pycgroup_version', '?')}; this pycgroup {__version__} reads "
                  f"versions up to {FORMAT_VERSION}: upgrade pycgroup to load it")
    return meta


def _origin(meta: Meta) -> Origin | None:
    o = meta.get("origin")
    if o is None:
        return None
    limits = {k: tuple(v) if isinstance(v, list) else v for k, v in o["limits"].items()}
    anchor = ClockAnchor(o["clock_anchor"]["realtime_ns"], o["clock_anchor"]["monotonic_ns"])
    return Origin(o["cgroup_mode"], o["cgroup_paths"], o["pid"], o["hostname"],
                  o["period_ns"], limits, anchor)


def _steps_table(steps: Steps | Mapping[str, Any] | None) -> StepTable | None:
    """Returns steps (a Steps, or a dict of equal-length arrays) as {column: array}."""
    if steps is None:
        return None
    table = steps.to_numpy() if hasattr(steps, "to_numpy") else steps
    table = {str(k): np.asarray(v) for k, v in dict(table).items()}
    if len({len(v) for v in table.values()}) > 1:
        raise ValueError("steps columns must have equal lengths")
    return table


def _marks(marks: Iterable[tuple[int, str]] | None) -> list[Mark]:
    return [Mark(int(t), str(label)) for t, label in (marks or ())]


# --- save and load -------------------------------------------------------------------

def save(path: PathLike, samples: Samples, steps: Steps | Mapping[str, Any] | None = None,
         marks: Iterable[tuple[int, str]] | None = None) -> None:
    """Writes samples (with their origin), a steps table and marks to path: ``.npz``
    (numpy only) or ``.parquet`` (pyarrow). Raises ValueError for another suffix."""
    path = os.fspath(path)
    fmt = _format_of(path)
    meta = header(samples, "file")
    table, mark_list = _steps_table(steps), _marks(marks)
    if fmt == ".npz":
        with NpzWriter(path, meta) as writer:
            writer.write_chunk(samples.to_numpy(), mark_list, [])
            writer.finish(steps=table)
    else:
        with ParquetWriter(path, meta, samples) as writer:
            writer.write_chunk(samples.to_numpy(), mark_list, [])
            writer.finish(steps=table)


def load(path: PathLike) -> Recording:
    """Reads a recording written by save() or a streaming recorder. Raises
    FileNotFoundError, NotARecording for a file that is not a pycgroup recording,
    TruncatedRecording for one that ends early or is damaged, NewerRecordingFormat for
    one a newer pycgroup wrote (all three are pycgroup.Error and ValueError)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PK\x03\x04" or (magic == b"PK\x05\x06"):
        return _load_npz(path)
    if magic == b"PAR1":
        return _load_parquet(path)
    if not magic:
        raise TruncatedRecording(path, "the file is empty") if path.endswith(SUFFIXES) \
            else NotARecording(path, "the file is empty")
    raise NotARecording(path, f"not a pycgroup recording: it starts with {magic!r}, "
                              "neither a zip (.npz) nor a Parquet file")


def _format_of(path: str) -> str:
    for suffix in SUFFIXES:
        if path.endswith(suffix):
            return suffix
    raise ValueError(f"{path}: a recording's name must end in .npz or .parquet")


def _recording(path: str, meta: Meta, rows: NDArray[np.int64], marks: Sequence[Mark],
               gaps: Sequence[Gap], steps: StepTable | None, complete: bool,
               stats: dict[str, int] | None) -> Recording:
    columns = meta["metrics"]
    if rows.ndim != 2 or rows.shape[1] != len(columns) + 1:
        raise TruncatedRecording(path, f"rows have shape {rows.shape}, not (n, "
                                       f"{len(columns) + 1}) for {len(columns)} metrics")
    samples = Samples(rows, columns, effective_memory_bytes=meta.get("effective_memory_bytes"),
                      cpu_limit_cores=meta.get("cpu_limit_cores"), origin=_origin(meta),
                      derived=meta.get("derived", ()))
    return Recording(path, samples, tuple(marks), steps, tuple(gaps), dict(meta["units"]),
                     dict(meta["kinds"]), meta.get("pycgroup_version", ""), meta["version"],
                     complete, stats)


# --- .npz ----------------------------------------------------------------------------

def _npy(array: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _json_npy(value: object) -> bytes:
    return _npy(np.array(json.dumps(value)))


class NpzWriter:
    """Appends chunks to an .npz recording; ``finish()`` writes the end member and the zip
    directory. Each chunk's rows member is written last, so a chunk counts once its rows
    are whole."""

    def __init__(self, path: str, meta: Meta):
        self.path = path
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED,
                                    compresslevel=1)
        self._zip.writestr(HEADER + ".npy", _json_npy(meta))
        self.chunks = 0
        self.rows = 0
        self._flush()

    def _flush(self) -> None:
        assert self._zip.fp is not None  # open until close()
        self._zip.fp.flush()

    def write_chunk(self, rows: NDArray[np.int64], marks: Sequence[Mark],
                    gaps: Sequence[Gap]) -> None:
        """Appends rows (column 0 t_ns), their marks and gaps, and flushes the file."""
        n = f"{self.chunks:06d}"
        if marks:
            self._zip.writestr(f"marks_t_ns.{n}.npy",
                               _npy(np.array([m.t_ns for m in marks], dtype=np.int64)))
            self._zip.writestr(f"marks_label.{n}.npy",
                               _npy(np.array([m.label for m in marks], dtype=np.str_)))
        if gaps:
            self._zip.writestr(f"gaps.{n}.npy", _npy(np.array(gaps, dtype=np.int64)))
        self._zip.writestr(f"rows.{n}.npy", _npy(np.ascontiguousarray(rows, dtype=np.int64)))
        self.chunks += 1
        self.rows += len(rows)
        self._flush()

    def finish(self, steps: StepTable | None = None,
               stats: dict[str, int] | None = None) -> None:
        for column, values in (steps or {}).items():
            self._zip.writestr(f"steps.{column}.npy", _npy(values))
        self._zip.writestr(END + ".npy", _json_npy({
            "chunks": self.chunks, "rows": self.rows, "steps": list(steps or ()),
            "stats": stats}))

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


def _scan_local_headers(path: str) -> tuple[dict[str, bytes], bool]:
    """Returns ({name: bytes} of the whole members, in order, and whether the scan
    reached a clean end) by walking the zip's local file headers: the way to read a zip
    whose writer died before writing its directory."""
    members: dict[str, bytes] = {}
    with open(path, "rb") as f:
        data = f.read()
    offset = 0
    while offset + _LOCAL_HEADER.size <= len(data):
        (signature, _, flags, method, _, _, crc, csize, usize, name_len,
         extra_len) = _LOCAL_HEADER.unpack_from(data, offset)
        if signature != b"PK\x03\x04":
            return members, signature in (b"PK\x01\x02", b"PK\x05\x06")
        start = offset + _LOCAL_HEADER.size + name_len + extra_len
        name = data[offset + _LOCAL_HEADER.size:offset + _LOCAL_HEADER.size + name_len]
        if flags & 0x08 or start + csize > len(data) or (usize and not csize):
            return members, False  # sizes unknown or the member is cut off
        raw = data[start:start + csize]
        try:
            content = zlib.decompress(raw, -15) if method == zipfile.ZIP_DEFLATED else raw
        except zlib.error:
            return members, False
        if zlib.crc32(content) != crc or len(content) != usize:
            return members, False
        members[name.decode()] = content
        offset = start + csize
    return members, False


def _read_npy(path: str, name: str, content: bytes) -> NDArray[Any]:
    try:
        array: NDArray[Any] = np.load(io.BytesIO(content), allow_pickle=False)
        return array
    except (ValueError, OSError, EOFError) as e:
        raise TruncatedRecording(path, f"member {name} is damaged: {e}") from None


def _load_npz(path: str) -> Recording:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if not names or names[0] != HEADER + ".npy":
                raise NotARecording(path, "a zip (.npz) without a pycgroup header: not a "
                                          "pycgroup recording")
            members: dict[str, bytes] = {}
            for name in names:
                try:
                    members[name] = z.read(name)
                except (zipfile.BadZipFile, zlib.error, EOFError) as e:
                    raise TruncatedRecording(path, f"member {name} is damaged: {e}") from None
            directory = True
    except zipfile.BadZipFile:
        members, _ = _scan_local_headers(path)
        directory = False
    names = list(members)
    if not names or names[0] != HEADER + ".npy":
        if not names:
            raise TruncatedRecording(path, "a zip whose first member is cut off or damaged")
        raise NotARecording(path, "a zip (.npz) without a pycgroup header: not a pycgroup "
                                  "recording")
    try:
        meta = json.loads(str(_read_npy(path, names[0], members[names[0]])))
    except json.JSONDecodeError as e:
        raise NotARecording(path, f"its header is not JSON: {e}") from None
    meta = _check_header(path, meta)
    end = (json.loads(str(_read_npy(path, END + ".npy", members[END + ".npy"])))
           if END + ".npy" in members else None)
    if (end is None or not directory) and meta["layout"] != "stream":
        why = "ends before its zip directory" if not directory else "has no end member"
        raise TruncatedRecording(path, f"the file is cut off: it {why} (written by save(), "
                                       "which always writes both)")
    chunks: dict[int, dict[str, NDArray[Any]]] = {}
    for name, content in members.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[2] == "npy" and parts[1].isdigit():
            chunks.setdefault(int(parts[1]), {})[parts[0]] = _read_npy(path, name, content)
    whole = [i for i in sorted(chunks) if "rows" in chunks[i]]
    if end is not None and (len(whole) != end["chunks"]):
        raise TruncatedRecording(path, f"{len(whole)} of {end['chunks']} chunks are present")
    if whole != list(range(len(whole))):
        raise TruncatedRecording(path, f"chunks {whole} are not numbered 0..{len(whole) - 1}")
    width = len(meta["metrics"]) + 1
    rows = (np.concatenate([chunks[i]["rows"] for i in whole]) if whole
            else np.zeros((0, width), dtype=np.int64))
    marks: list[Mark] = []
    gaps: list[Gap] = []
    for i in whole:
        c = chunks[i]
        if "marks_t_ns" in c:
            marks += [Mark(int(t), str(label)) for t, label in zip(c["marks_t_ns"],
                                                                   c["marks_label"])]
        if "gaps" in c:
            gaps += [Gap(*map(int, g)) for g in c["gaps"]]
    if end is not None and len(rows) != end["rows"]:
        raise TruncatedRecording(path, f"{len(rows)} of {end['rows']} rows are present")
    steps: StepTable | None = None
    if end is not None and end["steps"]:
        steps = {}
        for column in end["steps"]:
            name = f"steps.{column}.npy"
            if name not in members:
                raise TruncatedRecording(path, f"steps column {column!r} is missing")
            steps[column] = _read_npy(path, name, members[name])
    stats = None if end is None else end.get("stats")
    return _recording(path, meta, rows, marks, gaps, steps, end is not None, stats)


# --- .parquet ------------------------------------------------------------------------

class ParquetWriter:
    """Appends chunks to a .parquet recording as row groups; ``finish()`` stores marks,
    gaps and steps in the footer. Parquet keeps its index in that footer, so a file whose
    writer died cannot be read: stream to .npz to keep what was flushed."""

    def __init__(self, path: str, meta: Meta, samples: Samples):
        self._pa = require("pyarrow", "parquet", "Writing .parquet recordings")
        self._pq = require("pyarrow.parquet", "parquet", "Writing .parquet recordings")
        self.path = path
        self._meta = meta
        self._columns = samples.columns
        self._origin = samples.origin
        schema = Samples(np.zeros((0, len(self._columns) + 1), dtype=np.int64),
                         self._columns, origin=self._origin).to_arrow().schema
        self._writer = self._pq.ParquetWriter(path, schema, compression="zstd")
        self._marks: list[Mark] = []
        self._gaps: list[Gap] = []
        self.chunks = self.rows = 0
        self._steps: StepTable | None = None
        self._stats: dict[str, int] | None = None

    def write_chunk(self, rows: NDArray[np.int64], marks: Sequence[Mark],
                    gaps: Sequence[Gap]) -> None:
        self._writer.write_table(Samples(rows, self._columns, origin=self._origin).to_arrow())
        self._marks += marks
        self._gaps += gaps
        self.chunks += 1
        self.rows += len(rows)

    def finish(self, steps: StepTable | None = None,
               stats: dict[str, int] | None = None) -> None:
        self._steps, self._stats = steps, stats

    def close(self) -> None:
        meta = dict(self._meta)
        meta["marks"] = {"t_ns": [m.t_ns for m in self._marks],
                         "label": [m.label for m in self._marks]}
        meta["gaps"] = [list(g) for g in self._gaps]
        meta["steps"] = None if self._steps is None else {
            c: {"dtype": v.dtype.str, "values": v.tolist()} for c, v in self._steps.items()}
        meta["end"] = {"chunks": self.chunks, "rows": self.rows, "stats": self._stats}
        self._writer.add_key_value_metadata({HEADER: json.dumps(meta)})
        self._writer.close()

    def __enter__(self) -> ParquetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_parquet(path: str) -> Recording:
    pa = require("pyarrow", "parquet", "Loading .parquet recordings")
    pq = require("pyarrow.parquet", "parquet", "Loading .parquet recordings")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise TruncatedRecording(path, "a Parquet file without its footer: cut off, or "
                                       f"its writer stopped before closing it ({e})") from None
    raw = (parquet.metadata.metadata or {}).get(HEADER.encode())
    if raw is None:
        raise NotARecording(path, "a Parquet file without pycgroup metadata: not a "
                                  "pycgroup recording")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise NotARecording(path, f"its pycgroup metadata is not JSON: {e}") from None
    meta = _check_header(path, meta)
    try:
        table = parquet.read()
    except (pa.ArrowException, OSError) as e:
        raise TruncatedRecording(path, f"its data is damaged: {e}") from None
    columns = meta["metrics"]
    rows = np.empty((table.num_rows, len(columns) + 1), dtype=np.int64)
    rows[:, 0] = table.column("t_ns").to_numpy()
    for i, name in enumerate(columns, 1):
        column = table.column(name)
        rows[:, i] = column.fill_null(MISSING).to_numpy() if column.null_count else \
            column.to_numpy()
    marks = [Mark(int(t), str(label)) for t, label in zip(meta["marks"]["t_ns"],
                                                          meta["marks"]["label"])]
    gaps = [Gap(*g) for g in meta["gaps"]]
    steps = None if meta["steps"] is None else {
        c: np.array(v["values"], dtype=np.dtype(v["dtype"])) for c, v in meta["steps"].items()}
    if len(rows) != meta["end"]["rows"]:
        raise TruncatedRecording(path, f"{len(rows)} of {meta['end']['rows']} rows are present")
    return _recording(path, meta, rows, marks, gaps, steps, True, meta["end"]["stats"])
