"""Selecting the native reader or its pure-Python twin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, TypedDict, Union

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from pycgroup import _native, _pure
    from pycgroup.formats import Format, RawValue, SourceSpec

BACKENDS = ("native", "pure")

#: parse(fmt, data, keys) of either backend: the raw value of each key (int, "max" or None).
ParseFunction = Callable[["Format | int", bytes, Sequence[str]], "list[RawValue]"]


class ReaderLike(Protocol):
    """What the native Reader and its pure twin both provide."""

    @property
    def specs(self) -> tuple[SourceSpec, ...]: ...
    @property
    def ncolumns(self) -> int: ...
    def open_errors(self) -> dict[int, OSError]: ...
    def read_into(self, row: NDArray[np.int64]) -> int: ...
    def read(self) -> list[int]: ...
    def errors(self) -> list[tuple[int, Exception]]: ...
    def fill(self) -> int: ...
    def close(self) -> None: ...


class GpuGroupLike(Protocol):
    """What the native GpuGroup and its pure twin both provide."""

    @property
    def label(self) -> str: ...
    @property
    def columns(self) -> tuple[int | None, ...]: ...
    @property
    def lost_reads(self) -> int: ...
    def read_into(self, row: NDArray[np.int64]) -> int: ...
    def error(self) -> OSError | None: ...


class EngineStats(TypedDict):
    """The counters an engine's stats() returns."""

    samples: int
    dropped: int
    overruns: int
    read_errors: int
    last_error: Exception | None
    lateness_p50_us: float
    lateness_p99_us: float
    lateness_max_us: float
    position: int


class EngineLike(Protocol):
    """What the native Engine and its pure twin both provide. An engine reads through the
    reader and GPU groups of its own backend, hence the loosely typed setters."""

    @property
    def capacity(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def running(self) -> bool: ...
    def set_gpus(self, groups: Sequence[Any], every: int) -> None: ...
    def set_process_clock(self, columns: Mapping[str, int], cpu_every: int = 1,
                          rusage_every: int = 1) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...
    def sample(self) -> int: ...
    #: Asked by the first sample() in a fork's child to reopen the files (a WeakMethod).
    on_fork: Callable[[], Callable[[], None] | None] | None
    def boundary(self, exact: bool) -> bytes: ...
    def span_opened(self) -> None: ...
    def span_closed(self) -> None: ...
    def span_end(self, start: bytes, exact: bool, t_min: int, max_gap_ns: int,
                 ws_current: int, ws_inactive: int) -> bytes: ...
    def after_fork_in_child(self) -> None: ...
    def replace_reader(self, reader: Any) -> None: ...
    def copy(self, start: int = 0, since_ns: int | None = None,
             last: int | None = None) -> tuple[NDArray[np.int64], int]: ...
    def stats(self) -> EngineStats: ...


def reader_class(backend: str) -> Union[type[_native.Reader], type[_pure.Reader]]:
    """Returns the Reader class of a backend: "native" (the default) or "pure"."""
    if backend == "native":
        from pycgroup._native import Reader as NativeReader

        return NativeReader
    if backend == "pure":
        from pycgroup._pure import Reader as PureReader

        return PureReader
    raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")


def parser(backend: str) -> ParseFunction:
    """Returns the parse(fmt, data, keys) function of a backend."""
    reader_class(backend)  # validates the name
    if backend == "native":
        from pycgroup._native import parse as native_parse

        return native_parse
    from pycgroup._pure import parse as pure_parse

    return pure_parse
