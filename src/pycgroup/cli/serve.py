"""``pycgroup serve``: a standalone Prometheus exporter for a process's cgroup."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from pycgroup.errors import MissingExtra


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``serve`` to the subcommands of the pycgroup command."""
    serve = commands.add_parser(
        "serve", help="serve the cgroup's metrics to Prometheus (needs pycgroup[prometheus])")
    serve.add_argument("--port", type=int, default=9300,
                       help="the port (default: 9300; 0: any free port, printed)")
    serve.add_argument("--addr", default="127.0.0.1",
                       help="the address to listen on (default: 127.0.0.1; 0.0.0.0: all)")
    serve.add_argument("--pid", type=int,
                       help="export this process's cgroup, and exit when it exits "
                            "(default: this process's)")
    serve.add_argument("--add-local-rank", action="store_true",
                       help="listen on port + $LOCAL_RANK (one exporter per rank on a host)")
    serve.add_argument("--cadvisor-names", action="store_true",
                       help="also export the cAdvisor names (container_...)")
    serve.set_defaults(run=run)


def _stop_on_signals(stop: threading.Event) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())


def run(args: argparse.Namespace) -> int:
    """Serves until SIGTERM/SIGINT, or until the --pid process exits; returns the exit
    status."""
    from pycgroup.cgroup import current, of_pid

    try:
        from pycgroup.export.prometheus import start_http_server

        cg = current() if args.pid is None else of_pid(args.pid)
        server, _ = start_http_server(args.port, args.addr, add_local_rank=args.add_local_rank,
                                      cg=cg, cadvisor_names=args.cadvisor_names)
    except (MissingExtra, OSError, ValueError) as e:
        print(f"pycgroup serve: {e}", file=sys.stderr)
        return 1
    print(f"serving http://{args.addr}:{server.server_port}/metrics", flush=True)
    stop = threading.Event()
    _stop_on_signals(stop)
    while not stop.wait(1.0):
        if args.pid is not None and not _alive(args.pid):
            print(f"pycgroup serve: process {args.pid} exited", file=sys.stderr)
            break
    server.shutdown()
    return 0


def _alive(pid: int) -> bool:
    """Returns whether pid still runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
