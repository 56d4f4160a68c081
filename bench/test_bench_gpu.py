"""Group "gpu": one GPU sample group (every per-GPU metric) against the fake NVML of the
test suite: pycgroup's native group, the same NVML calls made bare in C, and the same
fields read through nvidia-ml-py. Both C sides loop 1000 times per call, so the Python
call costs nothing measurable in them."""

import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from test_gpu import SCRIPT  # noqa: E402

LOOPS = 1000


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpu")
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    library = str(directory / "libnvidia-ml.so.1")
    subprocess.run([compiler, "-std=c11", "-O2", "-shared", "-fPIC", "-fvisibility=hidden",
                    "-I", os.path.join(ROOT, "csrc"),
                    os.path.join(ROOT, "tests", "fake_nvml", "fake_nvml.c"), "-o", library],
                   check=True)
    bare = str(directory / "bare_nvml.so")
    subprocess.run([compiler, "-std=c11", "-O2", "-shared", "-fPIC", "-I",
                    os.path.join(ROOT, "csrc"), os.path.join(HERE, "bare_nvml.c"), "-o", bare,
                    "-ldl"], check=True)
    script = directory / "script.txt"
    from pycgroup import gpu

    script.write_text(SCRIPT.format(pid=gpu.driver_pid()))
    os.environ["FAKE_NVML_SCRIPT"] = str(script)
    os.environ[gpu.LIBRARY_VARIABLE] = library
    return library, bare


@pytest.fixture(scope="module")
def group(fake):
    import pycgroup
    from pycgroup import gpu

    sampler = pycgroup.Sampler([f"gpu0.{m}" for m in gpu.METRICS])
    (g,) = sampler._plan.gpu_groups
    return g, np.zeros(sampler._plan.ncolumns, dtype=np.int64)


@pytest.mark.benchmark(group="gpu")
def test_gpu_bare_nvml_calls(benchmark, fake):
    library, bare = fake
    lib = ctypes.CDLL(bare)
    assert lib.bare_open(library.encode(), 0) == 0
    benchmark.extra_info["label"] = f"the same NVML calls, bare in C (per group; ×{LOOPS} a round)"
    benchmark(lib.bare_run, LOOPS)


@pytest.mark.benchmark(group="gpu")
def test_gpu_native_group(benchmark, group):
    g, row = group
    assert g.read_many(row, 1) == 0 and row[0] == 1073741824
    benchmark.extra_info["label"] = f"pycgroup GPU group, native (per group; ×{LOOPS} a round)"
    benchmark(g.read_many, row, LOOPS)


@pytest.mark.benchmark(group="gpu")
def test_gpu_nvidia_ml_py(benchmark, fake):
    pynvml = pytest.importorskip("pynvml")
    from pycgroup.gpu import METRICS, PureGpuGroup

    g = PureGpuGroup(0, list(range(len(METRICS))), os.getpid())
    row = np.zeros(len(METRICS), dtype=np.int64)

    def loops():
        for _ in range(LOOPS):
            g.read_into(row)

    assert pynvml.nvmlDeviceGetCount() == 3
    benchmark.extra_info["label"] = f"the same fields through nvidia-ml-py (×{LOOPS} a round)"
    benchmark.pedantic(loops, rounds=5, iterations=1)
