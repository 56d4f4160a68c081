"""The per-device I/O files of cgroup v2, io.max and io.stat: one line per device,
"MAJ:MIN key=value ...", with "max" for no limit (cgroup-v2.rst, "IO Interface Files")::

    8:16 rbps=2097152 wbps=max riops=max wiops=120
    8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0
"""

from __future__ import annotations

import os
import re
from typing import Union

from pycgroup._pure import read_regular
from pycgroup.errors import ParseError
from pycgroup.values import UNLIMITED

#: A metric name of one device's key: io.max.8:16.rbps, io.stat.8:0.rbytes.
NAME = re.compile(r"io\.(max|stat)\.(\d+:\d+)\.([a-z_]+)")
#: The keys io.max limits (io.stat's are whatever the kernel writes).
IO_MAX_KEYS = ("rbps", "wbps", "riops", "wiops")

Value = Union[int, float]


def parse_io_lines(text: str, path: str = "io file") -> dict[str, dict[str, Value]]:
    """Returns {"MAJ:MIN": {key: value}} of an io.max or io.stat file (cgroup-v2.rst,
    "IO Interface Files": one "MAJ:MIN key=value ..." line per device, "max" meaning
    unlimited); raises ParseError naming the file and line."""
    devices: dict[str, dict[str, Value]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        device, *pairs = line.split()
        major, colon, minor = device.partition(":")
        if not (colon and major.isdigit() and minor.isdigit()):
            raise ParseError(f"{device!r} is not a MAJ:MIN device number", path, number)
        values: dict[str, Value] = {}
        for pair in pairs:
            key, equals, raw = pair.partition("=")
            if not equals or not key or not (raw.isdigit() or raw == "max"):
                raise ParseError(f"{pair!r} is not key=value", path, number)
            values[key] = UNLIMITED if raw == "max" else int(raw)
        devices[device] = values
    return devices


def read_io(directory: str, name: str) -> dict[str, dict[str, Value]] | None:
    """Returns the parsed io.max or io.stat of a cgroup directory, or None when absent."""
    path = os.path.join(directory, name)
    try:
        return parse_io_lines(read_regular(path).decode("utf-8", "replace"), path)
    except FileNotFoundError:
        return None
