import pytest

import pycgroup


@pytest.fixture(scope="session")
def cgroup():
    return pycgroup.current()


@pytest.fixture(scope="session")
def default_sampler(cgroup):
    sampler = pycgroup.Sampler(cgroup=cgroup, capacity=1 << 16)
    yield sampler
    sampler.close()
