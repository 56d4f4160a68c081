"""MkDocs hooks for pycgroup's documentation site.

- The README is the project's front door and also a page of the site: it is added as
  ``readme.md``, with its links into ``docs/`` made relative to the site, so that the
  pages can link to its sections and ``mkdocs build --strict`` checks those links and
  anchors both ways.
- ``<!-- pycgroup-help: NAME -->`` in a page becomes the ``--help`` text of
  ``pycgroup NAME``, taken from the command's own parser, so the option lists of
  docs/cli.md cannot drift from the code.
"""

import argparse
import functools
import os
import re

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

_DOCS_LINK = re.compile(r"\]\(docs/")
_HELP = re.compile(r"<!-- pycgroup-help: ([a-z]+) -->")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
HELP_WIDTH = 88


def on_files(files, config):
    root = os.path.dirname(os.path.abspath(config["config_file_path"]))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        text = f.read()
    files.append(File.generated(config, "readme.md", content=_DOCS_LINK.sub("](", text)))
    return files


def _subcommand_help() -> dict:
    """Returns {subcommand: its --help text}, from the parsers pycgroup.cli builds."""
    from pycgroup.cli import SUBCOMMANDS

    parser = argparse.ArgumentParser(prog="pycgroup")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        command.add_parser(commands)
    out = {}
    for name, sub in commands.choices.items():
        sub.formatter_class = functools.partial(argparse.HelpFormatter, width=HELP_WIDTH)
        out[name] = _ANSI.sub("", sub.format_help()).rstrip()
    return out


def on_page_markdown(markdown, page, config, files):
    if not _HELP.search(markdown):
        return markdown
    helps = _subcommand_help()

    def block(match):
        name = match[1]
        if name not in helps:
            raise PluginError(f"{page.file.src_uri}: no pycgroup subcommand {name!r}; "
                              f"there are {sorted(helps)}")
        return f"```text\n$ pycgroup {name} --help\n{helps[name]}\n```"

    return _HELP.sub(block, markdown)
