"""The C core under AddressSanitizer and UndefinedBehaviorSanitizer: its parsers fed
300,000 mutated kernel files, and its reader looping over live files."""

import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    assert compiler, "a C compiler is needed to build pycgroup itself"
    binary = str(tmp_path_factory.mktemp("fuzz") / "fuzz_parsers")
    sources = sorted(glob.glob(os.path.join(CSRC, "*.c")))
    subprocess.run(
        [compiler, "-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror",
         "-pthread", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-I", CSRC,
         *sources, os.path.join(HERE, "fuzz", "fuzz_parsers.c"), "-o", binary],
        check=True,
    )
    return binary


def live_files():
    candidates = {
        "0": ["/sys/fs/cgroup/memory/memory.stat", "/sys/fs/cgroup/memory.stat",
              "/sys/fs/cgroup/unified/cpu.stat", "/sys/fs/cgroup/cpu/cpu.stat"],
        "1": ["/proc/meminfo", "/proc/self/status"],
        "2": ["/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/memory/memory.usage_in_bytes"],
        "5": ["/proc/pressure/cpu", "/sys/fs/cgroup/unified/io.pressure"],
        "6": ["/proc/self/stat"],
    }
    return [f"{fmt}:{p}" for fmt, paths in candidates.items() for p in paths if os.path.exists(p)]


def test_parsers_and_reader_are_sanitizer_clean(fuzzer):
    seeds = sorted(p for p in glob.glob(os.path.join(HERE, "fixtures", "**", "*"), recursive=True)
                   if os.path.isfile(p))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    done = subprocess.run([fuzzer, "300000", *seeds, "--", *live_files()], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip() == "300000 inputs, no property violated"
