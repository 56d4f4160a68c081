"""The export layer's rules: the core never imports it, `import pycgroup` stays light, and
a missing optional dependency names the extra to install."""

import ast
import os
import subprocess
import sys

import pytest

import pycgroup

PACKAGE = os.path.dirname(pycgroup.__file__)
UPPER = ("pycgroup.export", "pycgroup.integrations", "pycgroup.cli")


def core_modules():
    for name in sorted(os.listdir(PACKAGE)):
        # The package's front door and the public short paths (pycgroup.prometheus,
        # pycgroup.otel) re-export the layers above; everything else is the core.
        if name.endswith(".py") and name not in ("__init__.py", "__main__.py",
                                                 "prometheus.py", "otel.py"):
            yield os.path.join(PACKAGE, name)


@pytest.mark.parametrize("path", list(core_modules()), ids=os.path.basename)
def test_core_never_imports_the_layers_above(path):
    source = open(path).read()
    for node in ast.walk(ast.parse(source)):  # functions' bodies too: not even lazily
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        assert not [n for n in names if n.startswith(UPPER)], (path, node.lineno)
    assert not any(f'"{u}' in source or f"'{u}" in source for u in UPPER), path


def test_import_pycgroup_stays_light():
    code = ("import sys, pycgroup, pycgroup.export; heavy = {'pandas', 'pyarrow', "
            "'matplotlib', 'rich'} & set(sys.modules); print(sorted(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_public_names_resolve_whatever_was_imported_first():
    """pycgroup imports its public names on first use. The submodule pycgroup.limits,
    imported by the sampler, must not take the place of the function limits()."""
    code = ("import sys, pycgroup; light = 'numpy' not in sys.modules; "
            "s = pycgroup.Sampler(['memory.current']); "
            "assert 'pycgroup.limits' in sys.modules; "
            "assert pycgroup.limits().cpu_count >= 1; "
            "missing = [n for n in pycgroup.__all__ if not hasattr(pycgroup, n)]; "
            "print(light, missing, set(pycgroup.__all__) <= set(dir(pycgroup)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "[]", "True"]


MISSING = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # what an environment without the package looks like
import numpy as np, pycgroup
from pycgroup.samples import Samples
s = Samples(np.zeros((2, 2), dtype=np.int64), ["memory.current"])
try:
    {call}
except pycgroup.MissingExtra as e:
    assert isinstance(e, ImportError)
    print(e)
"""


@pytest.mark.parametrize("blocked, call, extra", [
    (["pandas"], "s.to_pandas()", "pandas"),
    (["pyarrow"], "s.to_arrow()", "parquet"),
    (["pyarrow", "pyarrow.parquet"], "pycgroup.save('/tmp/x.parquet', s)", "parquet"),
    (["matplotlib"], "from pycgroup.export.plot import figure; figure(s)", "plot"),
    (["rich", "rich.live"], "from pycgroup.cli.watch import render; render([], 't')",
     "watch"),
])
def test_missing_extra_names_the_extra(blocked, call, extra):
    done = subprocess.run([sys.executable, "-c", MISSING.format(blocked=blocked, call=call)],
                          capture_output=True, text=True, cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    assert f'pip install "pycgroup[{extra}]"' in done.stdout
