#!/usr/bin/env bash
# Debian's package lists, once, for the steps after this one.
set -euo pipefail
apt-get update -qq
