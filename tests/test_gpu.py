"""GPU metrics against a fake libnvidia-ml.so.1 built from tests/fake_nvml/fake_nvml.c:
these machines have no GPU. The fake implements exactly the entry points used, with
values scripted per test."""

import ctypes
import errno
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import pycgroup
from pycgroup import gpu
from pycgroup.formats import MISSING
from installed import PYCGROUP

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(os.path.dirname(HERE), "csrc")

SCRIPT = """\
count 3
gpu0.uuid GPU-aaaaaaaa-1111-2222-3333-444444444444
gpu0.memory.used 1073741824
gpu0.memory.total 85899345920
gpu0.util.gpu 97
gpu0.util.memory 41
gpu0.power_mw 612000
gpu0.energy_mj 5000000
gpu0.temp_c 71
gpu0.clock.sm_mhz 1980
gpu0.clock.mem_mhz 2619
gpu0.clock_event_reasons 4
gpu0.violation.0_ns 1500000000
gpu0.violation.1_ns 20000
gpu0.proc {pid} 734003200
gpu0.proc 1 5
gpu1.uuid GPU-bbbbbbbb-1111-2222-3333-444444444444
gpu1.memory.used 2048
gpu1.memory.total 4096
gpu1.unsupported temp_c
gpu1.unsupported power_mw
gpu2.uuid GPU-cccccccc-1111-2222-3333-444444444444
gpu2.memory.used 3
"""
EXPECTED_GPU0 = {
    "gpu0.memory.used": 1073741824, "gpu0.memory.total": 85899345920, "gpu0.util.gpu": 97,
    "gpu0.util.memory": 41, "gpu0.power_mw": 612000, "gpu0.energy_mj": 5000000,
    "gpu0.temp_c": 71, "gpu0.clock.sm_mhz": 1980, "gpu0.clock.mem_mhz": 2619,
    "gpu0.clock_event_reasons": 4, "gpu0.violation.power_ns": 1500000000,
    "gpu0.violation.thermal_ns": 20000, "gpu0.violation.sync_boost_ns": 0,
    "gpu0.proc.memory.used": 734003200,
}


def build_fake(directory, *defines):
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    out = os.path.join(directory, "libnvidia-ml.so.1")
    subprocess.run([compiler, "-std=c11", "-O1", "-shared", "-fPIC", "-fvisibility=hidden",
                    *[f"-D{d}" for d in defines], "-I", CSRC,
                    os.path.join(HERE, "fake_nvml", "fake_nvml.c"), "-o", out], check=True)
    return out


@pytest.fixture(scope="session")
def fake_builds(tmp_path_factory):
    builds = {}
    for variant, defines in {"full": (), "old": ("FAKE_OLD_DRIVER",),
                             "no_init_v2": ("FAKE_NO_INIT_V2",)}.items():
        builds[variant] = build_fake(str(tmp_path_factory.mktemp(variant)), *defines)
    return builds


@pytest.fixture
def fake_nvml(fake_builds, tmp_path, monkeypatch):
    """Returns a function installing a fresh copy of a fake library (a new file, so a
    new instance with its own state) scripted with text; returns its ctypes handle."""

    def install(variant="full", script=SCRIPT):
        directory = tmp_path / variant
        directory.mkdir(exist_ok=True)
        library = str(directory / "libnvidia-ml.so.1")
        shutil.copy(fake_builds[variant], library)
        script_path = directory / "script.txt"
        script_path.write_text(script.format(pid=gpu.driver_pid()))
        monkeypatch.setenv("FAKE_NVML_SCRIPT", str(script_path))
        monkeypatch.setenv(gpu.LIBRARY_VARIABLE, library)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        handle = ctypes.CDLL(library)
        handle.fake_nvml_set.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        handle.fake_nvml_calls.restype = ctypes.c_ulonglong
        return handle

    return install


def set_value(handle, key, value):
    assert handle.fake_nvml_set(key.encode(), str(value).encode()) == 0


def test_without_nvml_gpu_metrics_are_unavailable_and_cgroups_work(monkeypatch, tmp_path):
    monkeypatch.setenv(gpu.LIBRARY_VARIABLE, str(tmp_path / "libnvidia-ml.so.1"))
    assert not gpu.available()
    assert "NVML cannot be used" in gpu.unavailable_reason()
    cg = pycgroup.current()
    values = cg.read(["gpu0.util.gpu", "host.mem.total"])
    assert values["gpu0.util.gpu"] is None and values["host.mem.total"] > 0
    assert "NVML cannot be used" in cg.explain("gpu0.util.gpu")
    # The default set leaves GPUs out and samples the rest.
    s = pycgroup.Sampler(hz=1000)
    assert not any(gpu.NAME.fullmatch(name) for name in s.columns)
    assert "proc.rss_bytes" in s.columns
    s.sample()
    assert s.data()["proc.rss_bytes"][0] > 0
    s.close()


def test_gpu_metrics_named_without_nvml_fail_at_construction(monkeypatch, tmp_path):
    """Named explicitly, a GPU metric must be read: leaving its column out made the
    README's GPU example fail later with an IndexError, far from the cause."""
    monkeypatch.setenv(gpu.LIBRARY_VARIABLE, str(tmp_path / "libnvidia-ml.so.1"))
    with pytest.raises(pycgroup.MetricUnavailable) as raised:
        pycgroup.Sampler(["gpu0.util.gpu", "proc.rss_bytes"], hz=1000)
    assert isinstance(raised.value, LookupError)
    assert "gpu0.util.gpu: NVML cannot be used" in str(raised.value)
    assert "proc.rss_bytes" not in str(raised.value)


def test_nvml_is_loaded_again_after_a_failure(fake_builds, monkeypatch, tmp_path):
    """A failure to load NVML is not kept: a later Sampler tries again (a driver
    installed, or a device attached, after the first try)."""
    library = tmp_path / "libnvidia-ml.so.1"
    script = tmp_path / "script.txt"
    script.write_text(SCRIPT.format(pid=gpu.driver_pid()))
    monkeypatch.setenv("FAKE_NVML_SCRIPT", str(script))
    monkeypatch.setenv(gpu.LIBRARY_VARIABLE, str(library))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert not gpu.available()
    with pytest.raises(pycgroup.MetricUnavailable):
        pycgroup.Sampler(["gpu0.util.gpu"])
    shutil.copy(fake_builds["full"], library)
    assert gpu.available()
    s = pycgroup.Sampler(["gpu0.util.gpu"])
    s.sample()
    assert s.data()["gpu0.util.gpu"].tolist() == [97]
    s.close()


def test_values_flow_to_their_columns_in_their_units(fake_nvml, backend):
    fake_nvml()
    cg = pycgroup.current()
    assert cg.read(list(EXPECTED_GPU0), backend) == EXPECTED_GPU0
    assert "gpu0.violation.power_ns" in cg.metrics()


def test_unsupported_fields_are_missing_not_zero(fake_nvml, backend):
    fake_nvml()
    values = pycgroup.current().read(["gpu1.memory.used", "gpu1.temp_c", "gpu1.power_mw"],
                                     backend)
    assert values == {"gpu1.memory.used": 2048, "gpu1.temp_c": None, "gpu1.power_mw": None}


@pytest.mark.parametrize("visible, expected", [
    ("1", [2048]), ("2,0", [3, 1073741824]), ("GPU-cccc", [3]), ("GPU-bbbbbbbb-1111", [2048]),
    ("0,7,1", [1073741824, None]),  # CUDA stops at the invalid 7: gpu1 does not exist
    ("", [None]), ("GPU-a,GPU-zz,1", [1073741824, None]),
])
def test_cuda_visible_devices(fake_nvml, monkeypatch, visible, expected):
    fake_nvml()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    names = [f"gpu{i}.memory.used" for i in range(len(expected))]
    assert list(pycgroup.current().read(names).values()) == expected


def test_mig_uuids_are_reported_unsupported(fake_nvml, monkeypatch):
    fake_nvml()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-4f6a2b5c-0000-1111-2222-333344445555")
    cg = pycgroup.current()
    assert cg.read(["gpu0.memory.used"]) == {"gpu0.memory.used": None}
    assert "MIG instance" in cg.explain("gpu0.memory.used")


def test_old_driver_entry_points(fake_nvml):
    """No nvmlDeviceGetFieldValues, no _v2/_v3 process lists (the v1 struct is smaller),
    ThrottleReasons instead of ClocksEventReasons: the same values come out."""
    fake_nvml("old")
    assert pycgroup.current().read(list(EXPECTED_GPU0)) == EXPECTED_GPU0
    plan = pycgroup.Sampler(["gpu0.proc.memory.used", "gpu0.energy_mj"])._plan
    (group,) = plan.gpu_groups
    group.read_into(np.zeros(plan.ncolumns, dtype=np.int64))
    assert group.process_struct == "v1" and not group.uses_field_values


def test_current_driver_uses_field_values_and_the_v3_struct(fake_nvml):
    fake_nvml()
    plan = pycgroup.Sampler(["gpu0.proc.memory.used", "gpu0.energy_mj"])._plan
    (group,) = plan.gpu_groups
    group.read_into(np.zeros(plan.ncolumns, dtype=np.int64))
    assert group.process_struct == "v3" and group.uses_field_values


def test_field_values_refused_falls_back_per_call(fake_nvml):
    handle = fake_nvml()
    set_value(handle, "field_values", 0)
    values = pycgroup.current().read(["gpu0.energy_mj", "gpu0.violation.power_ns"])
    assert values == {"gpu0.energy_mj": 5000000, "gpu0.violation.power_ns": 1500000000}


def test_missing_required_symbol(fake_nvml):
    fake_nvml("no_init_v2")
    assert not gpu.available()
    assert "nvmlInit_v2" in gpu.unavailable_reason()


def test_gpu_lost_mid_run_is_counted_and_sampling_goes_on(fake_nvml, backend):
    handle = fake_nvml()
    s = pycgroup.Sampler(["gpu0.util.gpu", "proc.rss_bytes"], hz=1000, backend=backend,
                         every={"gpu*": 1}).start()
    time.sleep(0.1)
    set_value(handle, "gpu0.lost", 1)
    lost_at = time.monotonic_ns()
    time.sleep(0.2)
    assert s.running
    s.stop()
    data = s.data()
    stats = s.stats
    assert stats.read_errors > 10
    assert isinstance(stats.last_error, OSError) and stats.last_error.errno == errno.ENODEV
    after = data.t_ns > lost_at + 5_000_000
    assert set(data["gpu0.util.gpu"][after].tolist()) == {MISSING}
    assert MISSING not in data["proc.rss_bytes"][after].tolist()  # the rest goes on
    assert 97 in data["gpu0.util.gpu"][data.t_ns < lost_at].tolist()


def test_a_lost_gpu_reads_as_unavailable_not_as_a_removed_cgroup(fake_nvml, backend):
    handle = fake_nvml()
    cg = pycgroup.current()
    assert cg.read(["gpu0.util.gpu", "proc.rss_bytes"], backend)["gpu0.util.gpu"] == 97
    set_value(handle, "gpu0.lost", 1)
    values = cg.read(["gpu0.util.gpu", "proc.rss_bytes"], backend)
    assert values["gpu0.util.gpu"] is None and values["proc.rss_bytes"] > 0


def test_gpu_divisor_is_honoured(fake_nvml):
    """GPU groups are read on every Nth tick: count the driver calls the thread made."""
    handle = fake_nvml()
    s = pycgroup.Sampler(["gpu0.util.gpu", "gpu0.temp_c"], hz=1000, every={"gpu*": 5})
    assert pycgroup.Sampler(["gpu0.util.gpu"], hz=1000).gpu_every == 10  # 100 Hz by default
    before = handle.fake_nvml_calls()
    s.sample()
    per_read = handle.fake_nvml_calls() - before
    assert per_read == 4  # utilisation, temperature, and the two sample-buffer drains
    before = handle.fake_nvml_calls()
    with s:
        time.sleep(0.3)
    ticks = s.stats.samples - 1
    assert ticks > 50
    assert handle.fake_nvml_calls() - before == per_read * len(range(0, ticks, 5))


def test_throttling_per_gpu(fake_nvml):
    handle = fake_nvml()
    s = pycgroup.Sampler(["gpu0.violation.power_ns", "gpu0.energy_mj",
                          "gpu0.clock_event_reasons"], hz=100)
    s.sample()
    set_value(handle, "gpu0.violation.0_ns", 1500000000 + 250_000_000)
    set_value(handle, "gpu0.energy_mj", 5000000 + 300)
    set_value(handle, "gpu0.clock_event_reasons", 0x4 | 0x40)
    time.sleep(0.5)
    s.sample()
    data = s.data()
    dt = (data.t_ns[1] - data.t_ns[0]) / 1e9
    (g,) = data.throttling().gpus
    assert g.gpu == 0
    assert g.violation_fraction["power"] == pytest.approx(0.25 / dt)
    assert g.average_power_w == pytest.approx(0.3 / dt)
    assert g.clock_event_fraction["sw_power_cap"] == 1.0
    assert g.clock_event_fraction["hw_thermal_slowdown"] == 0.5
    assert g.clock_event_fraction["gpu_idle"] == 0.0


def test_driver_sample_history_is_on_the_monotonic_clock(fake_nvml):
    fake_nvml()
    s = pycgroup.Sampler(["gpu0.power_mw"], hz=1000, every={"gpu*": 1})
    before = time.monotonic_ns()
    for _ in range(5):
        s.sample()
        time.sleep(0.002)
    after = time.monotonic_ns()
    t, watts = s.gpu_history(0)["power_mw"]
    assert len(t) == 5 and set(watts.tolist()) == {612000}
    assert np.all(np.diff(t) > 0)
    assert before - 2_000_000 <= t[0] and t[-1] <= after + 2_000_000  # µs stamps, mapped


def test_nvidia_ml_py_reads_the_same_fake_and_agrees(fake_builds, tmp_path):
    """nvidia-ml-py loads the fake by its usual name through LD_LIBRARY_PATH, in a child."""
    pytest.importorskip("pynvml", reason="the test extra installs nvidia-ml-py")
    directory = os.path.dirname(fake_builds["full"])
    script = tmp_path / "script.txt"
    code = """
import ctypes, json, os, pynvml, pycgroup
from pycgroup import gpu
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
pid = gpu.driver_pid()
fake = ctypes.CDLL("libnvidia-ml.so.1")  # the instance nvidia-ml-py loaded
fake.fake_nvml_set(b"gpu0.proc", f"{pid} 734003200".encode())
theirs = {
    "gpu0.memory.used": pynvml.nvmlDeviceGetMemoryInfo(h).used,
    "gpu0.memory.total": pynvml.nvmlDeviceGetMemoryInfo(h).total,
    "gpu0.util.gpu": pynvml.nvmlDeviceGetUtilizationRates(h).gpu,
    "gpu0.util.memory": pynvml.nvmlDeviceGetUtilizationRates(h).memory,
    "gpu0.power_mw": pynvml.nvmlDeviceGetPowerUsage(h),
    "gpu0.energy_mj": pynvml.nvmlDeviceGetTotalEnergyConsumption(h),
    "gpu0.temp_c": pynvml.nvmlDeviceGetTemperature(h, 0),
    "gpu0.clock.sm_mhz": pynvml.nvmlDeviceGetClockInfo(h, 1),
    "gpu0.clock.mem_mhz": pynvml.nvmlDeviceGetClockInfo(h, 2),
    "gpu0.clock_event_reasons": pynvml.nvmlDeviceGetCurrentClocksEventReasons(h),
    "gpu0.violation.power_ns": pynvml.nvmlDeviceGetViolationStatus(h, 0).violationTime,
    "gpu0.violation.thermal_ns": pynvml.nvmlDeviceGetViolationStatus(h, 1).violationTime,
    "gpu0.proc.memory.used": sum(p.usedGpuMemory for p in
                                 pynvml.nvmlDeviceGetComputeRunningProcesses(h) if p.pid == pid),
}
ours = pycgroup.current().read(list(theirs))
print(json.dumps([ours, theirs]))
"""
    script.write_text(SCRIPT.format(pid=0))  # the child adds itself
    env = dict(os.environ, LD_LIBRARY_PATH=directory, FAKE_NVML_SCRIPT=str(script))
    env.pop(gpu.LIBRARY_VARIABLE, None)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    done = subprocess.run([sys.executable, "-c", code], cwd="/", env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    import json

    ours, theirs = json.loads(done.stdout)
    assert ours == theirs
    assert ours["gpu0.proc.memory.used"] == 734003200


def test_info_reports_gpus(fake_nvml):
    fake_nvml()
    env = dict(os.environ)
    done = subprocess.run([PYCGROUP, "info", "--json", "--seconds", "0"], env=env,
                          capture_output=True, text=True, timeout=60)
    import json

    info = json.loads(done.stdout)
    assert info["gpu"]["available"] is True
    assert [d["uuid"] for d in info["gpu"]["devices"]][:1] == [
        "GPU-aaaaaaaa-1111-2222-3333-444444444444"]


def test_gpu_metrics_read_with_a_missing_file(fake_nvml, tree, backend):
    """A file that does not exist makes only its own metrics unavailable, GPUs or not."""
    fake_nvml()
    procfs, rootfs = tree("v2")
    os.remove(os.path.join(rootfs, "sys/fs/cgroup/system.slice/app.service/memory.peak"))
    values = pycgroup.current(procfs, rootfs).read(
        ["gpu0.memory.used", "memory.peak", "memory.current"], backend)
    assert values == {"gpu0.memory.used": 1073741824, "memory.peak": None,
                      "memory.current": 157286400}
