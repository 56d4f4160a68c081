"""What users write instead of pycgroup, for the benchmarks to compare against.

Both read the same files as a Sampler's plan and return {metric: int or None}.
"""

from __future__ import annotations

import os

from pycgroup.formats import Format


def _fields(plan):
    """Yields (path, format, [(metric, key, mul, div)]) for each file of a plan."""
    by_file = {}
    for name in plan.inputs:
        src = plan.sources[name]
        if not hasattr(src, "path"):
            continue  # a process clock or a GPU: no file to read
        by_file.setdefault((src.path, src.format), []).append((name, src.key, src.mul, src.div))
    for (path, fmt), fields in by_file.items():
        yield path, fmt, fields


def _values(fmt, text: str) -> dict:
    """Parses the way most code does: split and int, no validation."""
    if fmt == Format.FLAT_KEYED:
        return {k: int(v) for k, v in (line.split() for line in text.splitlines())}
    if fmt == Format.COLON_KEYED:
        return {k: int(v.split()[0]) * 1024 for k, _, v in (l.partition(":") for l in text.splitlines())
                if v.strip().endswith("kB")}
    if fmt == Format.PSI:
        return {line.split()[0]: int(line.rsplit("total=", 1)[1]) for line in text.splitlines()}
    if fmt == Format.PID_STAT:
        fields = text.rsplit(")", 1)[1].split()
        return {str(i + 3): int(v) for i, v in enumerate(fields[:22]) if v.lstrip("-").isdigit()}
    if fmt == Format.CPU_MAX:
        quota, period = text.split()
        return {"quota": None if quota == "max" else int(quota), "period": int(period)}
    value = text.strip()
    return {"": None if value in ("max", "-1") else int(value)}


class NaiveReader:
    """Opens, reads and splits every file on every call, as most monitoring code does."""

    def __init__(self, plan):
        self.files = list(_fields(plan))

    def read(self) -> dict:
        out = {}
        for path, fmt, fields in self.files:
            with open(path) as f:
                values = _values(fmt, f.read())
            for name, key, mul, div in fields:
                v = values.get(key)
                out[name] = None if v is None else v * mul // div
        return out


class TunedReader:
    """Keeps the files open and re-reads them with one os.pread each, then splits."""

    def __init__(self, plan):
        self.files = [(os.open(path, os.O_RDONLY | os.O_CLOEXEC), fmt, fields)
                      for path, fmt, fields in _fields(plan)]

    def read(self) -> dict:
        out = {}
        for fd, fmt, fields in self.files:
            values = _values(fmt, os.pread(fd, 65536, 0).decode())
            for name, key, mul, div in fields:
                v = values.get(key)
                out[name] = None if v is None else v * mul // div
        return out

    def close(self):
        for fd, _, _ in self.files:
            os.close(fd)
