"""Content a kernel never writes, read through both backends: a repeated key, and a
file whose lines move between reads. Both backends give one answer, warm or fresh."""


import pytest

from pycgroup import _native, _pure
from pycgroup.backends import reader_class
from pycgroup.formats import Field, Format, SourceSpec


def rewrite(path, text):
    """Rewrites the file in place, so that an open reader keeps its fd."""
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(text)


@pytest.mark.parametrize("style, first, second", [
    # The key moves below a line that now repeats it with another value.
    (Format.FLAT_KEYED, b"x 1\na 2\n", b"a 9\na 2\n"),
    (Format.COLON_KEYED, b"X: 1\na: 2 kB\n", b"a: 9 kB\na: 2 kB\n"),
    # The first occurrence is bad: a fresh parse rejects it, so must a warm one.
    (Format.COLON_KEYED, b"X: 1\na: 2\n", b"a: oops\na: 2\n"),
    # Repeated below: the first line still wins.
    (Format.FLAT_KEYED, b"a 2\nx 1\n", b"a 2\na 7\n"),
])
def test_repeated_key_reads_as_its_first_line_warm_or_fresh(tmp_path, backend, style, first,
                                                               second):
    path = str(tmp_path / "keyed")
    with open(path, "wb") as f:
        f.write(first)
    spec = SourceSpec(path, style, [Field("a", 0)])
    reader = reader_class(backend)([spec], 1)
    reader.read()  # binds "a" to its line
    rewrite(path, second)
    try:
        expected = _pure.parse(style, second, ["a"])
    except ValueError as e:
        with pytest.raises(type(e)):
            reader.read()
        return
    assert reader.read() == [expected[0]]
    assert reader.read() == [expected[0]]  # and again, warm on the same content
    assert _native.parse(style, second, ["a"]) == expected


def test_native_and_pure_bound_files_at_the_same_size():
    assert _native.MAX_FILE_BYTES == _pure.MAX_FILE_BYTES == 8 << 20


def test_u64_overflow_by_leading_zeros_and_long_digit_runs(backend):
    parse = _native.parse if backend == "native" else _pure.parse
    assert parse(Format.VALUE, b"0" * 5000 + b"7\n", [""]) == [7]
    with pytest.raises(ValueError):
        parse(Format.VALUE, b"9" * 5000 + b"\n", [""])
