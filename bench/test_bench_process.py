"""Group "process": this process's CPU times and RSS and the host's memory, by pycgroup
and by psutil."""

import pytest

import pycgroup

psutil = pytest.importorskip("psutil", reason="the bench extra installs psutil")
NAMES = ["proc.utime_usec", "proc.stime_usec", "proc.rss_bytes", "host.mem.total",
         "host.mem.available"]


@pytest.mark.benchmark(group="process")
def test_pycgroup_process_and_host(benchmark, cgroup):
    values = cgroup.read(NAMES)
    assert values["proc.rss_bytes"] > 0 and values["host.mem.total"] > 0
    sampler = pycgroup.Sampler(NAMES, cgroup=cgroup)
    benchmark(sampler.sample)


@pytest.mark.benchmark(group="process")
def test_pycgroup_read_dict(benchmark, cgroup):
    benchmark(cgroup.read, NAMES)


@pytest.mark.benchmark(group="process")
def test_psutil(benchmark):
    process = psutil.Process()

    def read():
        times = process.cpu_times()
        return times.user, times.system, process.memory_info().rss, psutil.virtual_memory()

    benchmark(read)
