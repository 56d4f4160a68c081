"""Native and pure-Python paths agree on Hypothesis-generated content: the same values,
or the same ParseError at the same line."""

import os

from hypothesis import HealthCheck, given, settings, strategies as st

from pycgroup import _native, _pure
from pycgroup.errors import ParseError
from pycgroup.formats import Field, Format, SourceSpec

KEYS = ["a", "b", "usage_usec", "MemTotal", "some", "full"]
numbers = st.one_of(st.integers(0, 2**64 + 5).map(str), st.sampled_from(["", "-1", "max", "1.5", "0x1", "٣"]))
key_text = st.one_of(st.sampled_from(KEYS), st.text("abz_ :\t", max_size=4))
junk = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@st.composite
def flat_lines(draw):
    return draw(key_text) + draw(st.sampled_from([" ", "  ", "", "\t"])) + draw(numbers)


@st.composite
def colon_lines(draw):
    return draw(key_text) + draw(st.sampled_from([":", ": ", ":\t  ", ""])) + draw(numbers) + draw(
        st.sampled_from(["", " kB", " MB", "kB"]))


@st.composite
def psi_lines(draw):
    def avg():
        return draw(st.sampled_from(["0.00", "1.50", "12", "1.", ".5", "99999999999999999999999.1"]))
    return (f"{draw(st.sampled_from(['some', 'full', 'none', 'some ']))} avg10={avg()} "
            f"avg60={avg()} avg300={avg()} total={draw(numbers)}")


@st.composite
def stat_lines(draw):
    comm = draw(st.text("ab )(", max_size=6))
    fields = draw(st.lists(numbers, max_size=30))
    sep = draw(st.sampled_from([" ", "  ", ""]))
    return f"{draw(numbers)} ({comm}){sep}" + " ".join(fields)


def content(lines):
    return st.builds(
        lambda ls, tail, extra: ("\n".join(ls) + tail).encode() + extra,
        st.lists(st.one_of(lines, junk), max_size=8), st.sampled_from(["", "\n", "\n\n"]),
        st.sampled_from([b"", b"", b"\xff"]),
    )


def outcome(parse, fmt, data, keys):
    try:
        return ("ok", parse(fmt, data, keys))
    except ParseError as e:
        return ("error", e.line)


def agree(fmt, data, keys):
    assert outcome(_native.parse, fmt, data, keys) == outcome(_pure.parse, fmt, data, keys), data


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(content(flat_lines()), st.lists(st.sampled_from(KEYS), min_size=1, max_size=4))
def test_flat_keyed(data, keys):
    agree(Format.FLAT_KEYED, data, keys)


@SETTINGS
@given(content(colon_lines()), st.lists(st.sampled_from(KEYS), min_size=1, max_size=4))
def test_colon_keyed(data, keys):
    agree(Format.COLON_KEYED, data, keys)


@SETTINGS
@given(content(psi_lines()))
def test_psi(data):
    agree(Format.PSI, data, ["some", "full"])


@SETTINGS
@given(st.one_of(content(numbers), content(st.builds(lambda a, b: f"{a} {b}", numbers, numbers))))
def test_single_values(data):
    agree(Format.VALUE, data, [""])
    agree(Format.QUOTA_V1, data, [""])
    agree(Format.CPU_MAX, data, ["quota", "period"])


@SETTINGS
@given(content(stat_lines()), st.lists(st.integers(4, 40).map(str), min_size=1, max_size=3))
def test_pid_stat(data, fields):
    agree(Format.PID_STAT, data, fields)


@SETTINGS
@given(st.binary(max_size=64))
def test_arbitrary_bytes(data):
    for fmt, keys in [(Format.FLAT_KEYED, ["a"]), (Format.COLON_KEYED, ["a"]), (Format.PSI, ["some"]),
                      (Format.VALUE, [""]), (Format.CPU_MAX, ["quota"]), (Format.PID_STAT, ["14"])]:
        agree(fmt, data, keys)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), unique=True, min_size=1),
                min_size=2, max_size=5))
def test_readers_agree_while_keys_move_between_reads(tmp_path_factory, layouts):
    """The native reader's positional fast path must follow keys that appear, vanish
    and move between reads exactly as a fresh parse does."""
    path = os.path.join(tmp_path_factory.mktemp("moving"), "memory.stat")
    write = lambda keys, n: open(path, "w").write("".join(f"{k} {n * 10 + i}\n" for i, k in enumerate(keys)))
    write(layouts[0], 0)
    spec = [SourceSpec(path, Format.FLAT_KEYED, [Field(k, i) for i, k in enumerate("abcde")])]
    native, pure = _native.Reader(spec, 5), _pure.Reader(spec, 5)
    for n, keys in enumerate(layouts):
        write(keys, n)
        assert native.read() == pure.read()
