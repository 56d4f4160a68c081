"""``pycgroup record``: record the cgroup of a process, or run a command and record the
cgroup it runs in (optionally a new one with limits), to a file ``pycgroup plot`` and
``pycgroup.load`` read."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from pycgroup.cgroup import of_pid
from pycgroup.cli.child_cgroup import ChildCgroup, parse_size
from pycgroup.export.stream import Recorder
from pycgroup.sampler import Sampler

PROGRESS_EVERY_S = 0.5


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``record`` to the subcommands of the pycgroup command."""
    p = commands.add_parser(
        "record", help="record a process's cgroup, or run a command and record it",
        description="Records the cgroup of --pid, or runs CMD and records the cgroup it "
                    "runs in until it exits (Ctrl-C stops it and keeps the file). The exit "
                    "status is CMD's.",
        usage="pycgroup record [-o FILE] [--hz N] [--metrics NAME ...] "
              "[--cgroup new [--memory SIZE] [--cpus N] [--pids N]] (--pid PID | -- CMD ...)")
    p.add_argument("-o", "--output", help="the file: .npz (default) or .parquet "
                                          "(default: pycgroup-<date>-<time>.npz)")
    p.add_argument("--hz", type=float, default=1000.0, help="rows a second (default: 1000)")
    p.add_argument("--metrics", nargs="+", metavar="NAME",
                   help="metrics to record (default: memory, CPU, pressure, process)")
    p.add_argument("--pid", type=int, help="record this process's cgroup until it exits")
    p.add_argument("--cgroup", choices=["new"],
                   help="new: run CMD in a new child cgroup (root only), removed afterwards")
    p.add_argument("--memory", type=parse_size, help="memory limit of the new cgroup (1G)")
    p.add_argument("--cpus", type=float, help="CPU quota of the new cgroup, in cores (0.5)")
    p.add_argument("--pids", type=int, help="process limit of the new cgroup")
    p.add_argument("--chunk", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def _fail(message: str, status: int = 2) -> int:
    print(f"pycgroup record: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    """Records until the process or command ends (or SIGINT/SIGTERM); returns CMD's exit
    status (128 + N when a signal N ended it), 0 for --pid."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if (args.pid is None) == (not command):
        return _fail("give either --pid PID or -- CMD ARGS...")
    limits = (args.memory, args.cpus, args.pids)
    if args.cgroup != "new" and any(v is not None for v in limits):
        return _fail("--memory, --cpus and --pids need --cgroup new")
    if args.cgroup == "new" and args.pid is not None:
        return _fail("--cgroup new runs CMD in a new cgroup: it cannot take --pid")
    output = args.output or time.strftime("pycgroup-%Y%m%d-%H%M%S.npz")
    stop = threading.Event()
    caught: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)
        stop.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)  # a Ctrl-C on the terminal reached it already

    child: subprocess.Popen[bytes] | None = None
    cgroup: ChildCgroup | None = None
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.cgroup == "new":
            cgroup = ChildCgroup(*limits)
        if command:
            try:
                child = subprocess.Popen(command, preexec_fn=cgroup.join if cgroup else None)
            except OSError as e:
                return _fail(f"cannot run {command[0]}: {e.strerror}", 127)
            target = of_pid(child.pid)
        else:
            target = of_pid(args.pid)
        hz = args.hz
        capacity = max(65536, int(hz * args.chunk * 8))
        sampler = Sampler(args.metrics, capacity=capacity, hz=hz, cgroup=target)
        with Recorder(sampler, output, chunk_s=args.chunk) as recorder:
            _wait(child, args.pid, stop, recorder)
        sampler.close()
        _report(recorder, output)
    except (OSError, ValueError, KeyError) as e:
        if child is not None and child.poll() is None:
            child.kill()
        return _fail(str(e).strip('"'), 1)
    finally:
        if child is not None:
            _reap(child)
        if cgroup is not None:
            cgroup.remove()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if child is not None:
        code = child.returncode
        return 128 - code if code < 0 else code
    return 128 + caught[0] if caught else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited: only its parent has not reaped it yet
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait(child: subprocess.Popen[bytes] | None, pid: int, stop: threading.Event,
          recorder: Recorder) -> None:
    """Waits for the command or process to end, or a signal; shows progress on a tty."""
    tty = sys.stderr.isatty()
    started = time.monotonic()
    while not stop.is_set():
        if child is not None and child.poll() is not None:
            break
        if child is None and not _alive(pid):
            break
        if tty:
            stats = recorder.sampler.stats
            sys.stderr.write(f"\r\x1b[Kpycgroup record: {time.monotonic() - started:7.1f} s"
                             f"  {stats.samples:,} rows  {stats.dropped + recorder.lost:,} "
                             f"dropped  -> {recorder.path}")
            sys.stderr.flush()
        stop.wait(PROGRESS_EVERY_S if tty else 0.05)
    if tty:
        sys.stderr.write("\r\x1b[K")


def _reap(child: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """Waits for the command; kills it if it outlives a signal's grace period."""
    try:
        child.wait(grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _report(recorder: Recorder, output: str) -> None:
    lost = f", {recorder.lost:,} lost" if recorder.lost else ""
    print(f"pycgroup record: {recorder.rows:,} rows{lost} -> {output}", file=sys.stderr)
