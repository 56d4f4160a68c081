"""Errors raised by pycgroup.

I/O failures are plain :class:`OSError` subclasses carrying the file name
(``FileNotFoundError``, ``PermissionError``, ...). Content the kernel should never
have written raises :class:`ParseError`.
"""

from __future__ import annotations


class ParseError(ValueError):
    """A kernel file's content did not have the documented format."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        where = path or "<buffer>"
        if line:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):
        return (type(self), (self.message, self.path, self.line))


