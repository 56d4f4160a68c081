"""``pycgroup watch``: a live terminal view of a cgroup (rich, ``pycgroup[watch]``):
usage against each limit as bars, cores used against the quota, throttled fraction,
pressure stalls, OOM events and GPUs, refreshed a few times a second; ``q`` or Ctrl-C
quits and the terminal is restored."""

from __future__ import annotations

import argparse
import math
import os
import select
import sys
import termios
import time
import tty
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from pycgroup import catalogue, gpu
from pycgroup._extras import require
from pycgroup.cgroup import current, of_pid
from pycgroup.errors import Error
from pycgroup.formats import MISSING, UNLIMITED
from pycgroup.sampler import DEFAULT_METRICS, Sampler

if TYPE_CHECKING:
    from pycgroup.cgroup import CGroup
    from rich.table import Table as RichTable

    from pycgroup.samples import Samples

BAR_WIDTH = 32
EXTRA_METRICS = ("pids.current",)


#: What the view shows of each GPU NVML sees.
GPU_METRICS = ("util.gpu", "memory.used", "memory.total")


def watched_metrics(cg: CGroup) -> list[str] | None:
    """Returns the metrics the view samples in cg: the Sampler's default set, the pids,
    and each GPU's utilisation and memory where NVML works (None: the default set)."""
    available = cg.metrics()
    names = [n for n in (*DEFAULT_METRICS, *EXTRA_METRICS) if n in available]
    names += [n for n in available
              if (match := gpu.NAME.fullmatch(n)) is not None and match[2] in GPU_METRICS]
    return names or None


@dataclass(frozen=True)
class Row:
    """One line of the view: a bar filled to ``fraction`` (None: no bar) and its text."""

    label: str
    fraction: float | None
    text: str


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _finite(limit: Any) -> Any:
    """Returns a limit, or None for no limit (UNLIMITED, which is math.inf) or an
    unknown one."""
    return None if limit is None or limit == math.inf else limit


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def rows(window: Samples, latest: Mapping[str, int], limits: Mapping[str, Any],
         since_start: Samples) -> list[Row]:
    """Returns the view's rows: window is the Samples of the last refresh, latest the
    newest value of each metric, limits the Limits fields, since_start the Samples of
    the whole watch (for event counts)."""
    out: list[Row] = []
    memory_limit = _finite(limits.get("memory_max_bytes"))
    effective: Any = limits.get("effective_memory_bytes")  # an int: Limits always has it
    for name, label in (("memory.current", "memory"), (catalogue.WORKING_SET, "working set")):
        value = latest.get(name)
        if value is None:
            continue
        of = f"of {_bytes(memory_limit)} limit" if memory_limit else \
            f"of {_bytes(effective)} (no limit; host memory)"
        out.append(Row(label, value / effective if effective else None,
                       f"{_bytes(value)} {of}"))
    high = _finite(limits.get("memory_high_bytes"))
    if high and latest.get("memory.current") is not None:
        out.append(Row("memory.high", latest["memory.current"] / high,
                       f"{_bytes(latest['memory.current'])} of {_bytes(high)} high"))
    t = window.throttling()
    quota = _finite(limits.get("cpu_quota_cores"))
    cpus = limits.get("effective_cpus") or 1
    if t.cpu_cores_used is not None:
        of = f"of {quota:g} quota" if quota else f"of {cpus:g} cpus (no quota)"
        out.append(Row("cpu cores", t.cpu_cores_used / (quota or cpus),
                       f"{t.cpu_cores_used:.2f} {of}"))
    if t.cpu_throttled_fraction is not None:
        out.append(Row("throttled", t.cpu_throttled_fraction,
                       f"{_pct(t.cpu_throttled_fraction)} of CPU periods"))
    elif quota:
        out.append(Row("throttled", None, "no CPU period ended since the last refresh"))
    else:
        out.append(Row("throttled", None, "never: no CPU quota"))
    for field, label in (("psi_cpu_some", "psi cpu some"), ("psi_memory_some",
                          "psi mem some"), ("psi_memory_full", "psi mem full"),
                         ("psi_io_some", "psi io some")):
        value = getattr(t, field)
        if value is not None:
            out.append(Row(label, value, f"{_pct(value)} of the time stalled"))
    pids, pids_max = latest.get("pids.current"), _finite(limits.get("pids_max"))
    if pids is not None:
        out.append(Row("pids", pids / pids_max if pids_max else None,
                       f"{pids} of {pids_max if pids_max else 'no limit'}"))
    whole = since_start.throttling()
    events = [(label, value) for label, value in (("oom kills", whole.oom_kills),
              ("memory.max hits", whole.memory_max_events),
              ("memory.high hits", whole.memory_high_events)) if value is not None]
    if events:
        out.append(Row("events", None, "  ".join(f"{label} {value}"
                                                 for label, value in events)))
    for n in sorted({int(name[3:].split(".")[0]) for name in latest
                     if name.startswith("gpu") and name[3:4].isdigit()}):
        util, used, total = (latest.get(f"gpu{n}.{m}") for m in
                             ("util.gpu", "memory.used", "memory.total"))
        if util is not None:
            out.append(Row(f"gpu{n} util", util / 100, f"{util}%"))
        if used is not None and total:
            out.append(Row(f"gpu{n} memory", used / total, f"{_bytes(used)} of "
                                                           f"{_bytes(total)}"))
    return out


def bar(fraction: float | None, width: int = BAR_WIDTH) -> str:
    """Returns a text bar filled to fraction (clipped to [0, 1]); blank for None."""
    if fraction is None:
        return " " * width
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def render(view_rows: Iterable[Row], title: str) -> RichTable:
    """Returns the rich renderable of the rows."""
    rich_table = require("rich.table", "watch", "pycgroup watch")
    Table = rich_table.Table
    table: RichTable = Table(title=title, title_justify="left", show_header=False, box=None,
                  padding=(0, 1))
    table.add_column("what", style="bold")
    table.add_column("bar")
    table.add_column("value")
    for row in view_rows:
        colour = "green"
        if row.fraction is not None and row.fraction >= 0.9:
            colour = "red"
        elif row.fraction is not None and row.fraction >= 0.6:
            colour = "yellow"
        table.add_row(row.label, f"[{colour}]{bar(row.fraction)}[/]", row.text)
    table.caption = "q or Ctrl-C quits"
    table.caption_justify = "left"
    return table


def _latest(window: Samples, names: Iterable[str]) -> dict[str, int]:
    """Returns the newest present value of each name in window."""
    latest: dict[str, int] = {}
    for name in names:
        if name in window and len(window):
            value = int(window[name][-1])
            if value not in (MISSING, UNLIMITED):
                latest[name] = value
    return latest


class _Keys:
    """Single key presses from a terminal on stdin (cbreak mode, restored on exit)."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin.isatty() else None
        self.saved: list[Any] | None = None

    def __enter__(self) -> _Keys:
        if self.fd is not None:
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            assert self.fd is not None  # saved from it
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def wait(self, seconds: float) -> str:
        """Returns the key pressed within seconds, or ""."""
        if self.fd is None:
            time.sleep(seconds)
            return ""
        ready, _, _ = select.select([self.fd], [], [], seconds)
        return os.read(self.fd, 32).decode(errors="replace") if ready else ""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``watch`` to the subcommands of the pycgroup command."""
    p = commands.add_parser("watch", help="a live view of a cgroup (needs pycgroup[watch])")
    p.add_argument("--pid", type=int, help="another process's cgroup (default: this one's)")
    p.add_argument("--hz", type=float, default=100.0, help="rows a second (default: 100)")
    p.add_argument("--refresh", type=float, default=4.0,
                   help="screen refreshes a second (default: 4)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Shows the live view until q or Ctrl-C; returns the exit status."""
    try:
        live_module = require("rich.live", "watch", "pycgroup watch")
        console_module = require("rich.console", "watch", "pycgroup watch")
        cg = current() if args.pid is None else of_pid(args.pid)
        sampler = Sampler(watched_metrics(cg), hz=args.hz, cgroup=cg)
    except (Error, OSError, ValueError) as e:
        print(f"pycgroup watch: {e}", file=sys.stderr)
        return 1
    limits = sampler.origin.limits
    who = "this process" if args.pid is None else f"pid {args.pid}"
    title = f"pycgroup watch: {who}, cgroup {cg.mode}"
    console = console_module.Console()
    period = 1.0 / args.refresh
    started = time.monotonic_ns()
    try:
        with sampler, _Keys() as keys, live_module.Live(
                console=console, screen=True, auto_refresh=False) as live:
            last = time.monotonic_ns()
            while True:
                key = keys.wait(period)
                if key.lower().startswith("q"):
                    break
                now = time.monotonic_ns()
                window = sampler.data(since_ns=last)
                whole = sampler.data(since_ns=started)
                last = now
                latest = _latest(window, (*sampler.columns, catalogue.WORKING_SET))
                live.update(render(rows(window, latest, limits, whole), title),
                            refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        sampler.close()
    return 0
