"""The compiled extension is what is tested: a broken build cannot hide behind the pure path."""

import importlib.machinery

import pycgroup
from pycgroup import _native, backends


def test_native_module_is_a_compiled_extension():
    assert _native.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert backends.reader_class("native") is _native.Reader


def test_default_backend_is_native():
    cg = pycgroup.current()
    cg.read(["host.mem.total"])
    ((plan, _derived),) = cg._plans.values()
    assert type(plan.reader) is _native.Reader
    cg.close()


def test_sentinels_agree_with_the_c_core():
    from pycgroup import formats

    assert formats.MISSING == _native.MISSING == -(2**63)
    assert formats.UNLIMITED == _native.UNLIMITED == 2**63 - 1
    assert formats.VALUE_CEIL == _native.VALUE_CEIL
    assert {f.name: int(f) for f in formats.Format} == _native.FORMATS


def test_unknown_backend_is_rejected():
    import pytest

    with pytest.raises(ValueError, match="backend must be one of"):
        backends.reader_class("rust")
