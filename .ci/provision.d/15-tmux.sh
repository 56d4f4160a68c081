#!/usr/bin/env bash
# tmux: tests/test_cli_watch.py runs `pycgroup watch` in a real terminal and reads the pane.
set -euo pipefail
command -v tmux >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux
