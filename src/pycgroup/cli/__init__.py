"""The ``pycgroup`` command: one module per subcommand, each with ``add_parser`` and
``run``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from pycgroup.cli import info, plot, record, serve, watch

SUBCOMMANDS = (info, record, plot, watch, serve)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the pycgroup command line; returns its exit status."""
    parser = argparse.ArgumentParser(
        prog="pycgroup", description="What a process's cgroups allow it, and what it uses.")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        command.add_parser(commands)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
