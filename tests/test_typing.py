"""Static types: the package passes ``mypy --strict`` with the project's configuration,
code using its public API type-checks strictly (with no ``Any`` leaking out of it), a
type error in such code is reported, and the stub of the compiled binding matches it."""

import importlib.util
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

mypy_api = pytest.importorskip(
    "mypy.api", reason="mypy is not installed (pip install '.[test]' installs it)")

import pycgroup  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src"
CONFIG = ROOT / "pyproject.toml"
EXAMPLES = Path(__file__).resolve().parent / "typing"

needs_source = pytest.mark.skipif(not (SOURCE / "pycgroup" / "_native.pyi").exists(),
                                  reason="needs the source tree (src/pycgroup)")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mypy-cache"))


@pytest.fixture
def mypy(cache_dir, monkeypatch):
    """Runs mypy in-process with the project's configuration, resolving ``import
    pycgroup`` to this checkout's sources; returns (report, exit status)."""
    monkeypatch.setenv("MYPYPATH", str(SOURCE))

    def run(*args):
        stdout, stderr, status = mypy_api.run(
            ["--config-file", str(CONFIG), "--cache-dir", cache_dir, *map(str, args)])
        return stdout + stderr, status

    return run


@needs_source
def test_the_package_passes_mypy_strict(mypy):
    report, status = mypy("--strict", SOURCE / "pycgroup")
    assert status == 0, report
    assert "Success: no issues found" in report, report


def test_the_configuration_is_strict_and_silences_nothing_of_ours():
    toml = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    project = toml.loads(CONFIG.read_text())
    config = project["tool"]["mypy"]
    assert config["strict"] is True
    assert config["files"] == ["src/pycgroup"]
    for override in config["overrides"]:
        assert "ignore_errors" not in override
        assert not any(m == "pycgroup" or m.startswith("pycgroup.") for m in override["module"])
    assert any(r.replace(" ", "").startswith("mypy>=")
               for r in project["project"]["optional-dependencies"]["test"])
    ours = [p for p in (SOURCE / "pycgroup").rglob("*.py*") if p.suffix in (".py", ".pyi")]
    assert len(ours) > 40
    for path in ours:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "type: ignore" in line:
                assert "type: ignore[" in line, f"{path}:{number}: {line.strip()}"


@needs_source
def test_typed_user_code_passes_mypy_strict(mypy):
    report, status = mypy("--strict", EXAMPLES / "user_code.py")
    assert status == 0, report
    assert "Success: no issues found in 1 source file" in report, report


def test_typed_user_code_runs_and_its_types_hold(tree):
    """The checked example is a real program: run it over a fixture cgroup and check the
    values against the types it declares."""
    procfs, rootfs = tree("v2")
    main = runpy.run_path(str(EXAMPLES / "user_code.py"))["main"]
    report = main(pycgroup.of_pid("self", procfs, rootfs))
    assert report.cpu_count >= 1 and isinstance(report.cpu_count, int)
    assert isinstance(report.quota_cores, float)
    assert set(report.read) == {"memory.current"}
    assert isinstance(report.read["memory.current"], int)
    assert isinstance(report.memory_headroom, (int, float))
    assert len(report.step_durations) == 3
    assert all(isinstance(d, float) and d >= 0 for d in report.step_durations)
    assert all(d is None or isinstance(d, int) for d in report.cpu_deltas)
    assert report.t_ns.dtype == np.int64 and len(report.t_ns) == report.rows >= 6
    assert report.rates.dtype == np.float64 and len(report.rates) == report.rows - 1
    assert report.steps == 3 and report.summary_count == 3
    assert "duration_s" in report.step_columns
    assert report.p99 is not None and math.isfinite(report.p99)
    assert report.samples_taken >= 6  # two exact rows per span
    assert [m.label for m in report.marks] == ["inside"] * 3
    assert all(isinstance(m.t_ns, int) for m in report.marks)


@needs_source
def test_a_type_error_in_user_code_is_reported_on_its_line(mypy):
    script = EXAMPLES / "wrong_types.py"
    report, status = mypy("--strict", script)
    assert status == 1, report
    lines = script.read_text().splitlines()
    wrong_capacity = lines.index('sampler = pycgroup.Sampler(capacity="4096")') + 1
    assert (f'{script.name}:{wrong_capacity}: error: Argument "capacity" to "Sampler" has '
            'incompatible type "str"; expected "int"') in report, report
    # read() says a metric can be unavailable: adding to it unchecked is an error too.
    unchecked = wrong_capacity + 1
    assert f'{script.name}:{unchecked}: error: Unsupported operand types for + ("None" and ' \
           '"int")' in report, report
    assert "Found 2 errors in 1 file" in report, report


@needs_source
def test_the_binding_stub_matches_the_compiled_module(cache_dir):
    """stubtest imports pycgroup._native and compares every name, signature and default
    with src/pycgroup/_native.pyi, so the stub cannot drift from _native.pyx."""
    if importlib.util.find_spec("pycgroup._native") is None:
        pytest.skip("pycgroup._native is not built")
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "pycgroup._native",
         "--mypy-config-file", str(CONFIG), "--allowlist",
         str(EXAMPLES / "stubtest_allowlist.txt"), "--ignore-unused-allowlist"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "MYPYPATH": str(SOURCE)}, cwd=cache_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found in 1 module" in done.stdout, done.stdout
