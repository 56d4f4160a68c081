"""The C core under the sanitizers: its parsers fed 300,000 mutated kernel files and its
reader looping over live files (ASan, UBSan), its ring and sampler thread hammered by
concurrent writers and readers, its lifecycle and GPU history raced from several threads
(TSan, and ASan/UBSan), and the extension itself built with ASan/UBSan running the
concurrency scenarios of tests/test_concurrency.py."""

import glob
import os
import shutil
import subprocess
import sys

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


@pytest.fixture(scope="module")
def fake_nvml_env(tmp_path_factory):
    """Returns (library path, environment) of a fake libnvidia-ml.so.1 and its script."""
    from test_gpu import SCRIPT, build_fake

    directory = tmp_path_factory.mktemp("nvml")
    library = build_fake(str(directory))
    script = directory / "script.txt"
    script.write_text(SCRIPT.format(pid=1))
    env = dict(os.environ, FAKE_NVML_SCRIPT=str(script), PYCGROUP_NVML_LIBRARY=library)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return library, env


@pytest.mark.parametrize("sanitizers", ["thread", "address,undefined"])
def test_lifecycle_and_gpu_history_under_concurrency(tmp_path_factory, fake_nvml_env,
                                                     sanitizers):
    """start/stop/close/sample_now from four threads at once, the reader closed under
    them, and GPU history copied while the sampler thread drains it: no race, no use after
    free, every copy in time order (tests/fuzz/stress_lifecycle.c)."""
    binary = build(tmp_path_factory, "stress_lifecycle", sanitizers)
    library, env = fake_nvml_env
    env = dict(env, TSAN_OPTIONS="halt_on_error=1", ASAN_OPTIONS="detect_leaks=1")
    done = subprocess.run([binary, "25", "/proc/self/stat", library], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.startswith("25 rounds, ") and "no property violated" in done.stdout
    checked = int(done.stdout.split(", ")[1].split()[0])
    assert checked > 0, done.stdout  # the history was really copied while drained


def sanitizer_runtime(name):
    """Returns the path of gcc's shared sanitizer runtime (libasan.so), or skips."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    path = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True,
                          text=True).stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):
        pytest.skip(f"{compiler} has no {name}")
    return compiler, path


@pytest.fixture(scope="module")
def sanitized_package(tmp_path_factory):
    """Returns (directory for PYTHONPATH, libasan path): a copy of the installed pycgroup
    whose extension is built from src/pycgroup/_native.pyx and csrc/ with
    -fsanitize=address,undefined."""
    import sysconfig

    import pycgroup

    compiler, libasan = sanitizer_runtime("libasan.so")
    if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        pytest.skip("this Python has no headers to build an extension against")
    work = tmp_path_factory.mktemp("asan_extension")
    package = work / "site" / "pycgroup"
    shutil.copytree(os.path.dirname(pycgroup.__file__), package,
                    ignore=shutil.ignore_patterns("_native*.so", "__pycache__"))
    native_c = str(work / "_native.c")
    subprocess.run([sys.executable, "-m", "cython", "-3", os.path.join(ROOT, "src", "pycgroup",
                    "_native.pyx"), "-o", native_c, "-I", os.path.join(ROOT, "src"),
                    "-I", CSRC], check=True)
    flags = ["-fPIC", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
             "-fno-sanitize-recover=all", "-pthread", "-I", CSRC,
             "-I", sysconfig.get_paths()["include"]]
    objects = []
    # The generated binding at -O0 (it is large and only converts types); the core at -O1.
    for source, level in [(native_c, "-O0")] + [(c, "-O1") for c in
                                                sorted(glob.glob(os.path.join(CSRC, "*.c")))]:
        objects.append(str(work / (os.path.basename(source) + ".o")))
        subprocess.run([compiler, "-c", level, *flags, source, "-o", objects[-1]], check=True)
    target = package / ("_native" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run([compiler, "-shared", *flags, *objects, "-ldl", "-o", str(target)],
                   check=True)
    return str(work / "site"), libasan


ASAN_SCENARIOS = ["stop_twice", "close_races_readers", "calls_after_close",
                  "file_grows_while_sampling", "endless_and_huge_files",
                  "gpu_history_while_sampling"]


@pytest.mark.parametrize("name", ASAN_SCENARIOS)
def test_extension_under_asan_runs_the_concurrency_scenarios(sanitized_package, fake_nvml_env,
                                                             name, tmp_path):
    """The same scenarios as tests/test_concurrency.py, through the public API of an
    AddressSanitizer + UBSan build of the extension (LD_PRELOAD of libasan, in a child)."""
    from test_concurrency import run_scenario

    site, libasan = sanitized_package
    _, env = fake_nvml_env
    env = dict(env, PYTHONPATH=site, LD_PRELOAD=libasan,
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    where = subprocess.run([sys.executable, "-c", "import pycgroup._native as n; print(n.__file__)"],
                           env=env, capture_output=True, text=True, cwd="/", timeout=120)
    assert where.stdout.startswith(site), where.stdout + where.stderr  # the sanitized build
    run_scenario(name, "native", tmp_path, env=env, timeout=300)
