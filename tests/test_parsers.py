"""Every parser, through both backends: success, absent keys, malformed content."""

import pytest

from pycgroup.backends import parser
from pycgroup.errors import ParseError
from pycgroup.formats import Format

U64_MAX = 2**64 - 1


@pytest.fixture
def parse(backend):
    return parser(backend)


# --- single values -------------------------------------------------------------------

@pytest.mark.parametrize("data, expected", [
    (b"123\n", 123), (b"0\n", 0), (b"max\n", "max"), (b"42", 42),
    (b"18446744073709551615\n", U64_MAX), (b"007\n", 7),
])
def test_value(parse, data, expected):
    assert parse(Format.VALUE, data, [""]) == [expected]


@pytest.mark.parametrize("data", [
    b"", b"\n", b"-1\n", b"12 \n", b" 12\n", b"1\n2\n", b"maxx\n", b"18446744073709551616\n",
    b"1.5\n", b"max\n\n", b"garbage\n",
])
def test_value_malformed(parse, data):
    with pytest.raises(ParseError) as info:
        parse(Format.VALUE, data, [""])
    assert info.value.line == 1


def test_v1_quota_minus_one_is_unlimited(parse):
    assert parse(Format.QUOTA_V1, b"-1\n", [""]) == ["max"]
    assert parse(Format.QUOTA_V1, b"150000\n", [""]) == [150000]
    with pytest.raises(ParseError):
        parse(Format.QUOTA_V1, b"-2\n", [""])


@pytest.mark.parametrize("data, expected", [
    (b"max 100000\n", ["max", 100000]), (b"50000 100000\n", [50000, 100000]),
    (b"150000 100000", [150000, 100000]),
])
def test_cpu_max(parse, data, expected):
    assert parse(Format.CPU_MAX, data, ["quota", "period"]) == expected
    assert parse(Format.CPU_MAX, data, ["period"]) == expected[1:]


@pytest.mark.parametrize("data", [
    b"", b"max\n", b"max  100000\n", b"max 100000 1\n", b"max max\n", b"x 100\n", b" 1 2\n",
])
def test_cpu_max_malformed(parse, data):
    with pytest.raises(ParseError):
        parse(Format.CPU_MAX, data, ["quota", "period"])


# --- keyed files ---------------------------------------------------------------------

CPU_STAT = b"usage_usec 5000\nuser_usec 4000\nsystem_usec 1000\nnr_periods 12\n"


def test_flat_keyed(parse):
    assert parse(Format.FLAT_KEYED, CPU_STAT, ["nr_periods", "usage_usec"]) == [12, 5000]


def test_flat_keyed_absent_key_is_missing_not_zero(parse):
    assert parse(Format.FLAT_KEYED, CPU_STAT, ["nr_throttled", "user_usec"]) == [None, 4000]


def test_flat_keyed_matches_exact_keys_never_prefixes(parse):
    data = b"file_mapped 1\nfile 2\nfile_dirty 3\n"
    assert parse(Format.FLAT_KEYED, data, ["file", "file_d", "fil"]) == [2, None, None]


def test_flat_keyed_full_u64_range(parse):
    assert parse(Format.FLAT_KEYED, b"a 18446744073709551615\n", ["a"]) == [U64_MAX]


def test_flat_keyed_empty_content_has_every_key_missing(parse):
    assert parse(Format.FLAT_KEYED, b"", ["a", "b"]) == [None, None]


def test_flat_keyed_duplicate_key_first_wins(parse):
    assert parse(Format.FLAT_KEYED, b"a 1\na 2\n", ["a"]) == [1]


@pytest.mark.parametrize("data, line", [
    (b"a 1\njunk\n", 2), (b"a 1\n\nb 2\n", 2), (b"a x\n", 1), (b"a 1\nb -2\n", 2),
    (b"a 1\nb 18446744073709551616\n", 2), (b" 1\n", 1), (b"a  1\n", 1), (b"a 1 kB\n", 1),
])
def test_flat_keyed_malformed_names_the_line(parse, data, line):
    with pytest.raises(ParseError) as info:
        parse(Format.FLAT_KEYED, data, ["a"])
    assert info.value.line == line


def test_flat_keyed_last_line_without_newline(parse):
    assert parse(Format.FLAT_KEYED, b"a 1\nb 2", ["b", "a"]) == [2, 1]
    assert parse(Format.FLAT_KEYED, b"b 18446744073709551615", ["b"]) == [U64_MAX]
    for data in (b"a 1\nb", b"a 1\nb ", b"a 1\nb 2x"):
        with pytest.raises(ParseError) as info:
            parse(Format.FLAT_KEYED, data, ["a"])
        assert info.value.line == 2


def test_flat_keyed_key_inside_another_key(parse):
    # memory.stat on v1 has both inactive_file and total_inactive_file
    data = b"inactive_file 1\ntotal_inactive_file 2\nactive_file 3\ntotal_active_file 4\n"
    assert parse(Format.FLAT_KEYED, data, ["total_inactive_file", "inactive_file",
                                           "active_file", "total_active"]) == [2, 1, 3, None]


def test_flat_keyed_same_length_and_first_byte(parse):
    data = b"ab 1\nac 2\nba 3\n"
    assert parse(Format.FLAT_KEYED, data, ["ac", "ba", "ad"]) == [2, 3, None]


def test_flat_keyed_lengths_64_apart(parse):
    long_key = "a" * 65
    data = b"b 1\n" + long_key.encode() + b" 2\n"
    assert parse(Format.FLAT_KEYED, data, [long_key, "a", "b"]) == [2, None, 1]


def test_flat_keyed_missing_key_is_none_even_with_zero_values_around(parse):
    data = b"nr_periods 0\nnr_throttled 0\n"
    assert parse(Format.FLAT_KEYED, data, ["throttled_usec"]) == [None]


def test_flat_keyed_duplicate_keys(parse):
    assert parse(Format.FLAT_KEYED, b"b 7\na 1\nb 8\na 2\n", ["a", "b"]) == [1, 7]
    with pytest.raises(ParseError) as info:  # every line is checked, repeated ones too
        parse(Format.FLAT_KEYED, b"a 1\na x\n", ["a"])
    assert info.value.line == 2


def test_keyed_key_wanted_twice_is_filled_twice(parse):
    assert parse(Format.FLAT_KEYED, b"x 3\na 1\na 2\n", ["a", "x", "a"]) == [1, 3, 1]
    assert parse(Format.COLON_KEYED, b"x: 3\nA: 1 kB\nA: 2\n", ["A", "A"]) == [1024, 1024]


def test_flat_keyed_digit_counts(parse):
    data = (b"a 9999999999999999999\nb 0000000000000000000000007\n"
            b"c 10000000000000000000\n")
    assert parse(Format.FLAT_KEYED, data, ["a", "b", "c"]) == [
        9999999999999999999, 7, 10000000000000000000]
    with pytest.raises(ParseError):
        parse(Format.FLAT_KEYED, b"a 99999999999999999999\n", ["a"])


def test_colon_keyed_duplicate_key_first_wins_and_later_values_are_free(parse):
    assert parse(Format.COLON_KEYED, b"A: 1 kB\nA: x\nB:\t2\n", ["A", "B"]) == [1024, 2]


def test_colon_keyed_last_line_without_newline(parse):
    assert parse(Format.COLON_KEYED, b"A: 1\nB: 2 kB", ["B"]) == [2048]
    with pytest.raises(ParseError) as info:
        parse(Format.COLON_KEYED, b"A: 1\nB", ["A"])
    assert info.value.line == 2


MEMINFO = b"MemTotal:        8039424 kB\nMemFree:  10 kB\nHugePages_Total:       7\nx: text\n"


def test_colon_keyed_converts_kb_to_bytes(parse):
    assert parse(Format.COLON_KEYED, MEMINFO, ["MemTotal", "HugePages_Total", "Nope"]) == [
        8039424 * 1024, 7, None]


def test_colon_keyed_ignores_text_values_it_does_not_want(parse):
    status = b"Name:\tpython3\nState:\tS (sleeping)\nVmRSS:\t   12000 kB\nThreads:\t3\n"
    assert parse(Format.COLON_KEYED, status, ["VmRSS", "Threads"]) == [12000 * 1024, 3]


@pytest.mark.parametrize("data, line", [
    (b"MemTotal: 1 kB\nno colon here\n", 2), (b"MemTotal: lots\n", 1),
    (b"MemTotal: 1 MB\n", 1), (b":1\n", 1), (b"MemTotal: 18014398509481984 kB\n", 1),
])
def test_colon_keyed_malformed(parse, data, line):
    with pytest.raises(ParseError) as info:
        parse(Format.COLON_KEYED, data, ["MemTotal"])
    assert info.value.line == line


def test_keys_the_format_cannot_have_are_rejected(parse):
    with pytest.raises(ValueError):
        parse(Format.FLAT_KEYED, b"a 1\n", ["a b"])
    with pytest.raises(ValueError):
        parse(Format.COLON_KEYED, b"a: 1\n", ["a:"])
    with pytest.raises(ValueError):
        parse(Format.PSI, b"", ["avg10"])
    with pytest.raises(ValueError):
        parse(Format.PID_STAT, b"", ["2"])
    with pytest.raises(ValueError):
        parse(Format.FLAT_KEYED, b"", ["a\0b"])


# --- PSI -----------------------------------------------------------------------------

PSI = (b"some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\n"
       b"full avg10=0.50 avg60=0.10 avg300=0.00 total=65432\n")


def test_psi(parse):
    assert parse(Format.PSI, PSI, ["some", "full"]) == [123456, 65432]


def test_psi_without_full_line_has_full_missing(parse):
    # cpu.pressure had no "full" line before Linux 5.13.
    assert parse(Format.PSI, PSI.split(b"\n")[0] + b"\n", ["some", "full"]) == [123456, None]


@pytest.mark.parametrize("data, line", [
    (PSI + b"junk\n", 3), (b"some avg10=1.5 avg60=0.80 total=1\n", 1),
    (b"some avg10=1.50 avg60=0.80 avg300=0.20 total=-1\n", 1), (PSI + PSI, 3),
    (b"some avg10=1.50 avg60=0.80 avg300=0.20\n", 1), (b"\n", 1),
    (b"some avg10=1.50 avg60=0.80 avg300=0.20 total=1 \n", 1),
])
def test_psi_malformed(parse, data, line):
    with pytest.raises(ParseError) as info:
        parse(Format.PSI, data, ["some", "full"])
    assert info.value.line == line


# --- /proc/<pid>/stat ----------------------------------------------------------------

STAT = (b"4242 (py (worker) 1) S 1 4242 4242 0 -1 4194560 5000 0 12 0 250 50 0 0 20 0 3 0 "
        b"123456 987654321 3000 18446744073709551615 1 1 0 0 0\n")


def test_pid_stat_comm_with_spaces_and_parentheses(parse):
    assert parse(Format.PID_STAT, STAT, ["14", "15", "24", "25"]) == [250, 50, 3000, U64_MAX]


def test_pid_stat_fields_past_the_end_are_missing(parse):
    assert parse(Format.PID_STAT, b"1 (x) S 0 1 1 0 -1 0 0 0 0 0 7\n", ["14", "15"]) == [7, None]


@pytest.mark.parametrize("data", [
    b"", b"x (a) S 1\n", b"1 a) S 1\n", b"1 (a S 1\n", b"1 (a)S 1\n", b"1 (a) S  1\n",
    b"1 (a) S 1 \n", b"1 (a) S 1\n2\n", b"1 (a) S 1 2 3 4 5 6 7 8 9 10 -11\n",
])
def test_pid_stat_malformed(parse, data):
    with pytest.raises(ParseError):
        parse(Format.PID_STAT, data, ["14"])
