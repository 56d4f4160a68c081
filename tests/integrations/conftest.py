"""Shared by the framework tests: where the tiny training programs are, and how to run
one in a child process (from "/", so that it imports the installed pycgroup)."""

import json
import os
import subprocess
import sys

import pytest

TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny.py")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run_tiny(*args, env=None, popen=subprocess.Popen, timeout=300):
    """Runs tiny.py with args in a child; returns the JSON of its last stdout line."""
    child = popen([sys.executable, TINY, *map(str, args)], cwd="/", text=True,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    out, err = child.communicate(timeout=timeout)
    assert child.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def cgroup_dirs(cgroups) -> str:
    """The leaf directories of a LiveCgroups, as PYCGROUP_TEST_JOIN wants them."""
    return ":".join(sorted(set(cgroups.leaves.values())))


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="creating cgroups needs root")
