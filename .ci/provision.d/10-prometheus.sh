#!/usr/bin/env bash
# The Prometheus server that tests/test_prometheus_server.py starts on 127.0.0.1 (its own
# config, data directory and port) to scrape pycgroup's exporters. Debian's package would
# start its own service on :9090 (and recommend the node exporter, another service): a
# policy-rc.d answering 101 ("action forbidden") keeps invoke-rc.d from starting
# anything while it installs, and only the server binary is wanted.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
command -v prometheus >/dev/null
