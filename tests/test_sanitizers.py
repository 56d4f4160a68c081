"""The C core under the sanitizers: its parsers fed 300,000 mutated kernel files and its
reader looping over live files (ASan, UBSan), and its ring and sampler thread hammered by
concurrent writers and readers (TSan, and ASan/UBSan)."""

import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
HERE = os.path.dirname(os.path.abspath(__file__))


def build(tmp_path_factory, program, sanitizers):
    """Returns the path of program (tests/fuzz/<program>.c) built with the core."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    assert compiler, "a C compiler is needed to build pycgroup itself"
    binary = str(tmp_path_factory.mktemp("sanitized") / program)
    sources = sorted(glob.glob(os.path.join(CSRC, "*.c")))
    subprocess.run(
        [compiler, "-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread",
         f"-fsanitize={sanitizers}", "-fno-sanitize-recover=all", "-I", CSRC, "-ldl",
         *sources, os.path.join(HERE, "fuzz", f"{program}.c"), "-o", binary],
        check=True,
    )
    return binary


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    return build(tmp_path_factory, "fuzz_parsers", "address,undefined")


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


@pytest.mark.parametrize("sanitizers", ["thread", "address,undefined"])
def test_ring_and_sampler_under_concurrency(tmp_path_factory, sanitizers):
    binary = build(tmp_path_factory, "stress_ring", sanitizers)
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1", ASAN_OPTIONS="detect_leaks=1")
    done = subprocess.run([binary, "300000", "/proc/self/stat"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.startswith("300000 rows pushed, ")
    assert "sampler: " in done.stdout and ", 0 read errors" in done.stdout
