#!/usr/bin/env bash
# The Docker tier (tests/docker/): Debian's docker.io provides dockerd and a client; the
# tests start and stop their own daemon. Safe to run again.
set -euo pipefail
if ! command -v dockerd >/dev/null || ! dpkg -s docker.io >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io
fi
