"""Selecting the native reader or its pure-Python twin."""

from __future__ import annotations

BACKENDS = ("native", "pure")


def reader_class(backend: str):
    """Returns the Reader class of a backend: "native" (the default) or "pure"."""
    if backend == "native":
        from pycgroup._native import Reader
    elif backend == "pure":
        from pycgroup._pure import Reader
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    return Reader


def parser(backend: str):
    """Returns the parse(fmt, data, keys) function of a backend."""
    reader_class(backend)  # validates the name
    if backend == "native":
        from pycgroup._native import parse
    else:
        from pycgroup._pure import parse
    return parse
