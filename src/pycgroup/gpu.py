"""GPU metrics from NVML, loaded at run time: no build-time, CUDA or driver dependency.

Names are ``gpu<N>.<metric>`` where N numbers the GPUs this process sees, as CUDA does:
``gpu0`` is ``cuda:0``. CUDA_VISIBLE_DEVICES may list NVML indices or ``GPU-`` UUIDs
(or unique prefixes of them); as in CUDA, an entry that matches nothing hides it and
every entry after it. MIG UUIDs are reported as unsupported. Without
CUDA_VISIBLE_DEVICES, N is the NVML index, which is CUDA's numbering when
CUDA_DEVICE_ORDER=PCI_BUS_ID (CUDA's default order puts the fastest GPU first).
PYCGROUP_NVML_LIBRARY names another library than libnvidia-ml.so.1.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence, Union

from pycgroup.formats import MISSING, VALUE_CEIL
from pycgroup.errors import Error
from pycgroup.sources import Unavailable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from pycgroup._native import Nvml
    from pycgroup.backends import GpuGroupLike

#: Per-GPU metrics, in the order of enum pcg_gpu_metric in csrc/nvml.h.
METRICS = (
    "memory.used", "memory.total", "util.gpu", "util.memory", "power_mw", "energy_mj",
    "temp_c", "clock.sm_mhz", "clock.mem_mhz", "clock_event_reasons",
    "violation.power_ns", "violation.thermal_ns", "violation.sync_boost_ns",
    "violation.board_limit_ns", "violation.low_util_ns", "violation.reliability_ns",
    "proc.memory.used",
)
COUNTERS = frozenset({"energy_mj"} | {m for m in METRICS if m.startswith("violation.")})
#: Bits of nvmlDeviceGetCurrentClocksEventReasons (nvml.h, "ClocksEventReasons").
CLOCK_EVENT_BITS = {
    "gpu_idle": 0x1, "applications_clocks_setting": 0x2, "sw_power_cap": 0x4,
    "hw_slowdown": 0x8, "sync_boost": 0x10, "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40, "hw_power_brake_slowdown": 0x80,
    "display_clock_setting": 0x100,
}
NAME = re.compile(r"gpu(\d+)\.(.+)")
LIBRARY_VARIABLE = "PYCGROUP_NVML_LIBRARY"


class GpuUnavailable(Error, OSError):
    """NVML cannot be used here; the message says why."""


@dataclass(frozen=True)
class GpuSource:
    """Where a GPU metric is read: an NVML device index and a metric."""

    visible: int  # N in gpuN
    nvml_index: int
    metric: str

    def describe(self) -> str:
        return f"NVML device {self.nvml_index} {self.metric}"


_loaded: dict[str | None, Nvml] = {}


def library_path() -> str | None:
    return os.environ.get(LIBRARY_VARIABLE) or None


def nvml() -> Nvml:
    """Returns the loaded NVML (one per library path), or raises GpuUnavailable.

    Only a success is kept: after a failure (no driver yet, a container started before
    its GPUs were attached) the next call, e.g. by a later Sampler, tries again."""
    path = library_path()
    if path not in _loaded:
        from pycgroup._native import Nvml

        try:
            _loaded[path] = Nvml(path)
        except OSError as e:
            raise GpuUnavailable(e.errno, f"NVML cannot be used: {e.strerror}",
                                 e.filename) from None
    return _loaded[path]


def unavailable_reason() -> str | None:
    """Returns why GPU metrics cannot be read here, or None when they can."""
    try:
        nvml()
    except GpuUnavailable as e:
        return f"{e.strerror} ({e.filename})"
    return None


def available() -> bool:
    """Returns True when NVML loads and initialises."""
    return unavailable_reason() is None


def visible_devices() -> list[int | str]:
    """Returns, for each GPU this process sees (gpu0, gpu1, ...), its NVML index, or a
    string saying why it cannot be read (a MIG instance)."""
    lib = nvml()
    count = lib.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return list(range(count))
    uuids = None
    devices: list[int | str] = []
    for entry in (e.strip() for e in listed.split(",")):
        if entry.startswith("MIG-"):
            devices.append(f"{entry} is a MIG instance, which pycgroup does not read")
            continue
        if entry.startswith("GPU-"):
            uuids = uuids or [lib.uuid(i) for i in range(count)]
            matches = [i for i, u in enumerate(uuids) if u.startswith(entry)]
            if len(matches) != 1:
                break  # CUDA ignores this entry and every one after it
            devices.append(matches[0])
        elif entry.isdigit() and int(entry) < count:
            devices.append(int(entry))
        else:
            break
    return devices


def driver_pid(procfs: str = "/proc") -> int:
    """Returns this process's PID as the driver reports it in process lists, or 0 when
    it cannot be known.

    The driver reports PIDs in the host's (the root) PID namespace. /proc/self/status's
    NSpid lists this process's PID in each namespace from the one procfs belongs to
    inwards, so its first entry is the host's PID when procfs belongs to the root
    namespace, which shows kthreadd as PID 2. Inside a container with its own procfs the
    host's PID is not visible: 0, and proc.memory.used reads as missing, not as a guess."""
    try:
        with open(os.path.join(procfs, "2", "comm")) as f:
            root_namespace = f.read().strip() == "kthreadd"
        with open(os.path.join(procfs, "self", "status")) as f:
            nspid = next((line.split()[1:] for line in f if line.startswith("NSpid:")), None)
    except OSError:
        return 0
    return int(nspid[0]) if root_namespace and nspid else 0


def resolve(visible: int, metric: str) -> Union[GpuSource, Unavailable]:
    """Returns the GpuSource of gpu<visible>.<metric>, or the reason it cannot be read."""
    try:
        devices = visible_devices()
    except GpuUnavailable as e:
        return Unavailable(f"{e.strerror} ({e.filename})")
    if visible >= len(devices):
        return Unavailable(f"this process sees {len(devices)} GPU(s): there is no gpu{visible}")
    device = devices[visible]
    if isinstance(device, str):
        return Unavailable(device)
    return GpuSource(visible, device, metric)


def groups(sources: Mapping[str, object], column: Mapping[str, int], backend: str,
           history_capacity: int = 4096) -> list[GpuGroupLike]:
    """Returns one reader per GPU for the GpuSources among sources (name -> source), each
    filling the row columns of column (name -> index)."""
    by_device: dict[tuple[int, int], dict[str, int]] = {}
    for name, src in sources.items():
        if isinstance(src, GpuSource):
            by_device.setdefault((src.visible, src.nvml_index), {})[src.metric] = column[name]
    out: list[GpuGroupLike] = []
    for (visible, index), metrics in sorted(by_device.items()):
        columns = [metrics.get(m) for m in METRICS]
        if backend == "native":
            from pycgroup._native import GpuGroup

            out.append(GpuGroup(nvml(), index, columns, driver_pid(), history_capacity,
                                label=f"gpu{visible}"))
        else:
            out.append(PureGpuGroup(index, columns, driver_pid(), label=f"gpu{visible}"))
    return out


class PureGpuGroup:
    """The pure-Python twin of GpuGroup, through nvidia-ml-py (the pynvml module)."""

    def __init__(self, index: int, columns: Sequence[int | None], pid: int, label: str = ""):
        try:
            import pynvml
        except ImportError:
            raise GpuUnavailable(2, "the pure backend reads GPUs through nvidia-ml-py, which "
                                    "is not installed", "pynvml") from None
        path = library_path()
        if path and getattr(pynvml.nvmlLib, "_name", None) != path:
            import ctypes

            # Point nvidia-ml-py at the library pycgroup was told of.
            pynvml.nvmlLib = ctypes.CDLL(path)
            getattr(pynvml, "_nvmlGetFunctionPointer_cache", {}).clear()
        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self.columns = tuple(columns)
        self.label = label
        self._pid = pid
        self.lost_reads = 0
        self._error: OSError | None = None

    def _calls(self) -> Iterator[tuple[tuple[str, ...], Callable[[], dict[str, Any]]]]:
        n, h = self._nvml, self._handle

        def memory() -> dict[str, Any]:
            m = n.nvmlDeviceGetMemoryInfo(h)
            return {"memory.used": m.used, "memory.total": m.total}

        def utilization() -> dict[str, Any]:
            u = n.nvmlDeviceGetUtilizationRates(h)
            return {"util.gpu": u.gpu, "util.memory": u.memory}

        def processes() -> dict[str, Any]:
            used = sum(p.usedGpuMemory or 0 for p in n.nvmlDeviceGetComputeRunningProcesses(h)
                       if p.pid == self._pid)
            return {"proc.memory.used": used if self._pid else None}

        yield ("memory.used", "memory.total"), memory
        yield ("util.gpu", "util.memory"), utilization
        yield ("power_mw",), lambda: {"power_mw": n.nvmlDeviceGetPowerUsage(h)}
        yield ("energy_mj",), lambda: {"energy_mj": n.nvmlDeviceGetTotalEnergyConsumption(h)}
        yield ("temp_c",), lambda: {"temp_c": n.nvmlDeviceGetTemperature(h, 0)}
        yield ("clock.sm_mhz",), lambda: {"clock.sm_mhz": n.nvmlDeviceGetClockInfo(h, 1)}
        yield ("clock.mem_mhz",), lambda: {"clock.mem_mhz": n.nvmlDeviceGetClockInfo(h, 2)}
        yield ("clock_event_reasons",), lambda: {
            "clock_event_reasons": n.nvmlDeviceGetCurrentClocksEventReasons(h)}
        for policy, metric in enumerate(METRICS[10:16]):
            def violation(p: int = policy, m: str = metric) -> dict[str, Any]:
                return {m: n.nvmlDeviceGetViolationStatus(h, p).violationTime}

            yield (metric,), violation
        yield ("proc.memory.used",), processes

    def read_into(self, row: NDArray[np.int64]) -> int:
        wanted = {m: c for m, c in zip(METRICS, self.columns) if c is not None}
        for metrics, call in self._calls():
            if not any(m in wanted for m in metrics):
                continue
            try:
                values = call()
            except self._nvml.NVMLError as e:
                if e.value == self._nvml.NVML_ERROR_GPU_IS_LOST:
                    self.lost_reads += 1
                    self._error = OSError(19, str(e), self.label)
                    for c in wanted.values():
                        row[c] = MISSING
                    return -19
                values = dict.fromkeys(metrics)
            for m in metrics:
                if m in wanted:
                    v = values[m]
                    row[wanted[m]] = MISSING if v is None else min(int(v), VALUE_CEIL)
        return 0

    def error(self) -> OSError | None:
        return self._error
