import os
import shutil

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture(params=["native", "pure"])
def backend(request):
    """Each test that takes this runs against the C core and its pure-Python twin."""
    return request.param


@pytest.fixture
def tree(tmp_path):
    """Returns a function copying a fixture tree into tmp_path (tests may mutate it)
    and returning (procfs, rootfs)."""

    def copy(name):
        root = tmp_path / name
        shutil.copytree(os.path.join(FIXTURES, name), root, symlinks=True)
        return str(root / "proc"), str(root)

    return copy


@pytest.fixture
def live_cgroups():
    """Returns a function making nested test cgroups for the controllers named, as cgroup
    v1 or v2, whichever the kernel offers (skipping, with the reason, where it offers
    neither writable); removes them afterwards."""
    from live import LiveCgroups

    made = []

    def make(*controllers, optional=()):
        cgroups = LiveCgroups([*controllers, *optional])
        made.append(cgroups)
        missing = [c for c in controllers if c not in cgroups.leaves]
        if missing:
            pytest.skip(f"this kernel offers {', '.join(missing)} neither as a writable cgroup v1 "
                        "hierarchy nor as a cgroup v2 controller")
        return cgroups

    yield make
    for cgroups in made:
        cgroups.remove()
