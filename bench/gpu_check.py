"""Checks pycgroup's GPU metrics on a machine with NVIDIA GPUs.

    python bench/gpu_check.py [--seconds 5]

1. Compares every gpu<N>.* metric with nvidia-ml-py and with
   `nvidia-smi --query-gpu=...` read at the same moment (gauges may move between
   reads; counters must not go backwards).
2. Checks that the violation counters read through nvmlDeviceGetFieldValues carry the
   same nanoseconds as nvmlDeviceGetViolationStatus.
3. Times each NVML call and one whole GPU sample group, native and via nvidia-ml-py.
4. Measures how much a 100 Hz and a 1 kHz GPU sampler slow a CUDA workload (PyTorch
   matmuls, when torch is installed).
Prints a Markdown report; exits 1 if a value disagrees.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

import pycgroup
from pycgroup import gpu

SMI_FIELDS = {
    "memory.used": ("memory.used", 2**20), "memory.total": ("memory.total", 2**20),
    "util.gpu": ("utilization.gpu", 1), "util.memory": ("utilization.memory", 1),
    "power_mw": ("power.draw", 1000), "temp_c": ("temperature.gpu", 1),
    "clock.sm_mhz": ("clocks.sm", 1), "clock.mem_mhz": ("clocks.mem", 1),
}
#: How far a gauge may move between two reads a moment apart, as a fraction.
TOLERANCE = {"util.gpu": 0.5, "util.memory": 0.5, "power_mw": 0.25, "temp_c": 0.1,
             "clock.sm_mhz": 0.2, "clock.mem_mhz": 0.05, "memory.used": 0.05}


def smi(n: int) -> dict:
    query = ",".join(f for f, _ in SMI_FIELDS.values())
    out = subprocess.run(["nvidia-smi", f"--id={n}", f"--query-gpu={query}",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True,
                         check=True).stdout.strip().split(", ")
    return {m: float(v) * scale for (m, (_, scale)), v in zip(SMI_FIELDS.items(), out)
            if v not in ("[N/A]", "[Not Supported]")}


def close(metric: str, a, b) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= TOLERANCE.get(metric, 0.0) * max(abs(a), abs(b), 1)


def compare(n: int) -> list:
    import pynvml

    names = [f"gpu{n}.{m}" for m in gpu.METRICS]
    ours = pycgroup.current().read(names)
    pure = pycgroup.current().read(names, backend="pure")
    theirs = smi(n)
    rows, bad = [], []
    for name in names:
        metric = name.split(".", 1)[1]
        smi_value = theirs.get(metric)
        ok = close(metric, ours[name], pure[name]) and (
            smi_value is None or close(metric, ours[name], smi_value))
        rows.append(f"| {name} | {ours[name]} | {pure[name]} | {smi_value} | "
                    f"{'ok' if ok else 'DIFFERS'} |")
        if not ok:
            bad.append(name)
    # The field-value violation counters against nvmlDeviceGetViolationStatus.
    handle = pynvml.nvmlDeviceGetHandleByIndex(gpu.visible_devices()[n])
    for policy, metric in enumerate(gpu.METRICS[10:16]):
        try:
            direct = pynvml.nvmlDeviceGetViolationStatus(handle, policy).violationTime
        except pynvml.NVMLError:
            continue
        field = pycgroup.current().read([f"gpu{n}.{metric}"])[f"gpu{n}.{metric}"]
        ok = field is not None and abs(field - direct) <= max(0.01 * direct, 1e8)
        rows.append(f"| gpu{n}.{metric} (field vs ViolationStatus) | {field} | {direct} | | "
                    f"{'ok' if ok else 'DIFFERS'} |")
        if not ok:
            bad.append(metric)
    return rows, bad


def time_calls(n: int, reps: int = 2000) -> list:
    import pynvml

    handle = pynvml.nvmlDeviceGetHandleByIndex(gpu.visible_devices()[n])
    calls = {
        "nvmlDeviceGetMemoryInfo": lambda: pynvml.nvmlDeviceGetMemoryInfo(handle),
        "nvmlDeviceGetUtilizationRates": lambda: pynvml.nvmlDeviceGetUtilizationRates(handle),
        "nvmlDeviceGetPowerUsage": lambda: pynvml.nvmlDeviceGetPowerUsage(handle),
        "nvmlDeviceGetTemperature": lambda: pynvml.nvmlDeviceGetTemperature(handle, 0),
        "nvmlDeviceGetClockInfo": lambda: pynvml.nvmlDeviceGetClockInfo(handle, 1),
        "nvmlDeviceGetViolationStatus": lambda: pynvml.nvmlDeviceGetViolationStatus(handle, 0),
        "nvmlDeviceGetComputeRunningProcesses": lambda: pynvml.nvmlDeviceGetComputeRunningProcesses(handle),
    }
    rows = []
    for name, call in calls.items():
        began = time.perf_counter_ns()
        for _ in range(reps):
            call()
        rows.append(f"| {name} (nvidia-ml-py) | {(time.perf_counter_ns() - began) / reps / 1000:.1f} µs |")
    sampler = pycgroup.Sampler([f"gpu{n}.{m}" for m in gpu.METRICS])
    (group,) = sampler._plan.gpu_groups
    row = np.zeros(sampler._plan.ncolumns, dtype=np.int64)
    began = time.perf_counter_ns()
    group.read_many(row, reps)
    native = (time.perf_counter_ns() - began) / reps / 1000
    pure = gpu.PureGpuGroup(gpu.visible_devices()[n], list(range(len(gpu.METRICS))), gpu.driver_pid())
    began = time.perf_counter_ns()
    for _ in range(reps // 10):
        pure.read_into(row)
    python = (time.perf_counter_ns() - began) / (reps // 10) / 1000
    rows += [f"| one GPU sample group, pycgroup native | {native:.1f} µs |",
             f"| one GPU sample group, nvidia-ml-py | {python:.1f} µs ({python / native:.1f}×) |"]
    return rows


def cuda_slowdown(seconds: float) -> list:
    try:
        import torch
    except ImportError:
        return ["torch is not installed: the CUDA slowdown was not measured."]
    if not torch.cuda.is_available():
        return ["torch sees no CUDA device: the CUDA slowdown was not measured."]
    a = torch.randn(4096, 4096, device="cuda")

    def work():
        torch.cuda.synchronize()
        began = time.perf_counter()
        n = 0
        while time.perf_counter() - began < seconds:
            a @ a
            n += 1
        torch.cuda.synchronize()
        return n / (time.perf_counter() - began)

    work()  # warm up
    alone = work()
    rows = [f"| matmuls per second, no sampler | {alone:.1f} |"]
    for hz, every in ((100, 1), (1000, 1)):
        with pycgroup.Sampler([f"gpu0.{m}" for m in gpu.METRICS], hz=hz, every={"gpu*": every}):
            rate = work()
        rows.append(f"| matmuls per second, GPU sampler at {hz} Hz | {rate:.1f} "
                    f"({(alone / rate - 1) * 100:+.2f}% slower) |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if not gpu.available():
        print(f"no GPU metrics here: {gpu.unavailable_reason()}")
        return 2
    failed = []
    print("| metric | pycgroup | nvidia-ml-py | nvidia-smi | |\n|---|---|---|---|---|")
    for n in range(len(gpu.visible_devices())):
        rows, bad = compare(n)
        print("\n".join(rows))
        failed += bad
    print("\n| cost | per call |\n|---|---|")
    print("\n".join(time_calls(0)))
    print("\n| CUDA workload | |\n|---|---|")
    print("\n".join(cuda_slowdown(args.seconds)))
    if failed:
        print(f"\ndisagreeing: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
