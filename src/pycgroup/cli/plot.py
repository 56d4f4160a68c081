"""``pycgroup plot``: a recording as stacked panels in a PNG, SVG or HTML file."""

from __future__ import annotations

import argparse
import os
import sys

from pycgroup.errors import Error
from pycgroup.export.files import load


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``plot`` to the subcommands of the pycgroup command."""
    p = commands.add_parser(
        "plot", help="plot a recording (needs pycgroup[plot])",
        description="Draws memory, CPU cores used, throttling, pressure stalls and GPU "
                    "panels of a recording, with its steps and marks shaded.")
    p.add_argument("file", help="a recording (.npz or .parquet)")
    p.add_argument("-o", "--output", help="the plot: .png, .svg or .html "
                                          "(default: FILE with .png)")
    p.add_argument("--metrics", nargs="+", metavar="NAME",
                   help="only these metrics (default: the standard panels)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Writes the plot; returns the exit status."""
    from pycgroup.export.plot import save_plot

    output = args.output or os.path.splitext(args.file)[0] + ".png"
    try:
        panels = save_plot(load(args.file), output, args.metrics)
    except (Error, OSError, ValueError, KeyError) as e:
        print(f"pycgroup plot: {e}", file=sys.stderr)
        return 1
    print(f"pycgroup plot: {panels} panels -> {output}", file=sys.stderr)
    return 0
