#!/usr/bin/env bash
# The framework tests (tests/integrations/): torch, Lightning, transformers, Keras and
# JAX at the pinned versions of the frameworks-test extra, into the environment that
# the README's test command then runs in. pip skips what is already installed, so a
# second run changes nothing. torch is pinned to a CPU build: an unpinned torch pulls
# several GB of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/../.."
pip install -q ".[frameworks-test]"
