"""Every case of the W3C Trace Context test suite (github.com/w3c/trace-context `test/test.py`
at commit d782773, run with SPEC_LEVEL=2 and STRICT_LEVEL=2), as a table run offline against the
adapter service (`tests/w3c/service.py`) over real loopback HTTP. Each row names the suite test
it mirrors (`Class.test_name`). `test_real_suite` runs the suite itself when it is present."""

from __future__ import annotations

import pytest

from tests.w3c.harness import run_harness
from tests.w3c.suite import PYTHON_ENV, SUITE_ENV, configured, run_suite

TRACE_ID = "12345678901234567890123456789012"
PARENT_ID = "1234567890123456"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"
TP = ("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-00")  # what the tracestate cases send
FUTURE = "what-the-future-will-be-like"


@pytest.fixture(scope="module")
def harness():
    with run_harness() as running:
        yield running


def _row(suite_test: str, *values):
    return pytest.param(*values, id=suite_test)


def tp(version="00", trace=TRACE_ID, parent=PARENT_ID, flags="01", name="traceparent"):
    return (name, f"{version}-{trace}-{parent}-{flags}")


# TraceContextTest.<id>: (headers sent, whether the incoming trace is continued)
TRACEPARENT_CASES = [
    _row("test_traceparent_included_tracestate_missing", [tp()], True),
    _row("test_traceparent_header_name[trace-parent]", [tp(name="trace-parent")], False),
    _row("test_traceparent_header_name[trace.parent]", [tp(name="trace.parent")], False),
    _row("test_traceparent_header_name_valid_casing[TraceParent]", [tp(name="TraceParent")], True),
    _row("test_traceparent_header_name_valid_casing[TrAcEpArEnT]", [tp(name="TrAcEpArEnT")], True),
    _row("test_traceparent_header_name_valid_casing[TRACEPARENT]", [tp(name="TRACEPARENT")], True),
    _row("test_traceparent_version_0x00[trailing-dot]", [tp(flags="01.")], False),
    _row("test_traceparent_version_0x00[future-fields]", [tp(flags=f"01-{FUTURE}")], False),
    _row("test_traceparent_version_0xcc[plain]", [tp("cc")], True),
    _row("test_traceparent_version_0xcc[future-fields]", [tp("cc", flags=f"01-{FUTURE}")], True),
    _row("test_traceparent_version_0xcc[dot-not-dash]", [tp("cc", flags=f"01.{FUTURE}")], False),
    _row("test_traceparent_version_0xff", [tp("ff")], False),
    _row("test_traceparent_version_illegal_characters[.0]", [tp(".0")], False),
    _row("test_traceparent_version_illegal_characters[0.]", [tp("0.")], False),
    _row("test_traceparent_version_too_long[000]", [tp("000")], False),
    _row("test_traceparent_version_too_long[0000]", [tp("0000")], False),
    _row("test_traceparent_version_too_short", [tp("0")], False),
    _row("test_traceparent_trace_id_all_zero", [tp(trace="0" * 32)], False),
    _row(
        "test_traceparent_trace_id_illegal_characters[lead]", [tp(trace="." + TRACE_ID[1:])], False
    ),
    _row(
        "test_traceparent_trace_id_illegal_characters[tail]", [tp(trace=TRACE_ID[:-1] + ".")], False
    ),
    _row("test_traceparent_trace_id_too_long", [tp(trace=TRACE_ID + "3")], False),
    _row("test_traceparent_trace_id_too_short", [tp(trace=TRACE_ID[:-1])], False),
    _row("test_traceparent_parent_id_all_zero", [tp(parent="0" * 16)], False),
    _row(
        "test_traceparent_parent_id_illegal_characters[lead]",
        [tp(parent="." + PARENT_ID[1:])],
        False,
    ),
    _row(
        "test_traceparent_parent_id_illegal_characters[tail]",
        [tp(parent=PARENT_ID[:-1] + ".")],
        False,
    ),
    _row("test_traceparent_parent_id_too_long", [tp(parent=PARENT_ID + "7")], False),
    _row("test_traceparent_parent_id_too_short", [tp(parent=PARENT_ID[:-1])], False),
    _row("test_traceparent_trace_flags_illegal_characters[.0]", [tp(flags=".0")], False),
    _row("test_traceparent_trace_flags_illegal_characters[0.]", [tp(flags="0.")], False),
    _row("test_traceparent_trace_flags_too_long", [tp(flags="001")], False),
    _row("test_traceparent_trace_flags_too_short", [tp(flags="1")], False),
    _row("test_traceparent_ows_handling[space-before]", [("traceparent", " " + VALID)], True),
    _row("test_traceparent_ows_handling[tab-before]", [("traceparent", "\t" + VALID)], True),
    _row("test_traceparent_ows_handling[space-after]", [("traceparent", VALID + " ")], True),
    _row("test_traceparent_ows_handling[tab-after]", [("traceparent", VALID + "\t")], True),
    _row("test_traceparent_ows_handling[both]", [("traceparent", "\t " + VALID + " \t")], True),
    _row("test_traceparent_duplicated", [tp(trace=TRACE_ID[:-1] + "1"), tp()], False),
    _row("test_both_traceparent_and_tracestate_missing", [], False),
]


@pytest.mark.parametrize(("headers", "continued"), TRACEPARENT_CASES)
def test_traceparent_case(harness, headers, continued):
    sent = harness.one(headers).traceparent
    assert sent.version == "00"
    assert sent.parent_id != PARENT_ID and sent.parent_id != "0" * 16
    if continued:
        assert sent.trace_id == TRACE_ID
    else:  # a new trace: none of the offered trace ids (nor a piece of a too-long one)
        offered = {TRACE_ID, TRACE_ID[:-1] + "1", "0" * 32, "23456789012345678901234567890123"}
        assert sent.trace_id not in offered


KEY = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
VENDOR_KEY = KEY + "@a-z0-9_-*/"
ALL_VALUE_CHARS = "".join(map(chr, [*range(0x20, 0x2C), *range(0x2D, 0x3D), *range(0x3E, 0x7F)]))
BAR = [f"bar{i:02d}={i:02d}" for i in range(1, 34)]
BAR_32 = dict(m.split("=") for m in BAR[:32])
Z256, TENANT_KEY = "z" * 256, "t" * 241 + "@" + "v" * 14


def ts(*values: str, name: str = "tracestate") -> list[tuple[str, str]]:
    return [(name, v) for v in values]


def bars(last: int) -> list[tuple[str, str]]:
    """bar01..bar<last> in four headers, as the suite sends them."""
    return ts(*(",".join(BAR[i : min(i + 10, last)]) for i in range(0, last, 10)))


# TraceContextTest.<id>: (tracestate headers sent after TP, the tracestate propagated)
TRACESTATE_CASES = [
    _row(
        "test_tracestate_included_traceparent_included", ts("foo=1,bar=2"), {"foo": "1", "bar": "2"}
    ),
    _row("test_tracestate_header_name[trace-state]", ts("foo=1", name="trace-state"), {}),
    _row("test_tracestate_header_name[trace.state]", ts("foo=1", name="trace.state"), {}),
    _row(
        "test_tracestate_header_name_valid_casing[TraceState]",
        ts("foo=1", name="TraceState"),
        {"foo": "1"},
    ),
    _row(
        "test_tracestate_header_name_valid_casing[TrAcEsTaTe]",
        ts("foo=1", name="TrAcEsTaTe"),
        {"foo": "1"},
    ),
    _row(
        "test_tracestate_header_name_valid_casing[TRACESTATE]",
        ts("foo=1", name="TRACESTATE"),
        {"foo": "1"},
    ),
    _row("test_tracestate_empty_header[empty]", ts(""), {}),
    _row("test_tracestate_empty_header[then-empty]", ts("foo=1", ""), {"foo": "1"}),
    _row("test_tracestate_empty_header[empty-first]", ts("", "foo=1"), {"foo": "1"}),
    # the suite accepts either occurrence of a duplicated key; this one keeps the leftmost
    _row("test_tracestate_duplicated_keys[same-value]", ts("foo=1,foo=1"), {"foo": "1"}),
    _row("test_tracestate_duplicated_keys[other-value]", ts("foo=1,foo=2"), {"foo": "1"}),
    _row("test_tracestate_duplicated_keys[two-headers-same]", ts("foo=1", "foo=1"), {"foo": "1"}),
    _row("test_tracestate_duplicated_keys[two-headers-other]", ts("foo=1", "foo=2"), {"foo": "1"}),
    _row(
        "test_tracestate_all_allowed_characters[simple-key]",
        ts(f"{KEY}={ALL_VALUE_CHARS}"),
        {KEY: ALL_VALUE_CHARS},
    ),
    _row(
        "test_tracestate_all_allowed_characters[vendor-key]",
        ts(f"{VENDOR_KEY}={ALL_VALUE_CHARS}"),
        {VENDOR_KEY: ALL_VALUE_CHARS},
    ),
    _row(
        "test_tracestate_ows_handling[around-commas]",
        ts("foo=1 \t , \t bar=2, \t baz=3"),
        {"foo": "1", "bar": "2", "baz": "3"},
    ),
    _row(
        "test_tracestate_ows_handling[tabs]",
        ts("foo=1\t \t,\t \tbar=2,\t \tbaz=3"),
        {"foo": "1", "bar": "2", "baz": "3"},
    ),
    _row("test_tracestate_ows_handling[space-before]", ts(" foo=1"), {"foo": "1"}),
    _row("test_tracestate_ows_handling[tab-before]", ts("\tfoo=1"), {"foo": "1"}),
    _row("test_tracestate_ows_handling[space-after]", ts("foo=1 "), {"foo": "1"}),
    _row("test_tracestate_ows_handling[tab-after]", ts("foo=1\t"), {"foo": "1"}),
    _row("test_tracestate_ows_handling[both]", ts("\t foo=1 \t"), {"foo": "1"}),
    _row("test_tracestate_key_illegal_characters[space-before-equals]", ts("foo =1"), {}),
    _row("test_tracestate_key_illegal_characters[upper-case]", ts("FOO=1"), {}),
    _row("test_tracestate_key_illegal_characters[dot]", ts("foo.bar=1"), {}),
    _row("test_tracestate_key_illegal_vendor_format[empty-system]", ts("foo@=1,bar=2"), {}),
    _row("test_tracestate_key_illegal_vendor_format[empty-tenant]", ts("@foo=1,bar=2"), {}),
    _row("test_tracestate_key_illegal_vendor_format[double-at]", ts("foo@@bar=1,bar=2"), {}),
    _row("test_tracestate_key_illegal_vendor_format[two-ats]", ts("foo@bar@baz=1,bar=2"), {}),
    _row("test_tracestate_member_count_limit[32]", bars(32), BAR_32),
    _row("test_tracestate_member_count_limit[33]", bars(33), {}),
    _row(
        "test_tracestate_key_length_limit[key-256]",
        ts("foo=1", Z256 + "=1"),
        {"foo": "1", Z256: "1"},
    ),
    _row("test_tracestate_key_length_limit[key-257]", ts("foo=1", Z256 + "z=1"), {}),
    _row(
        "test_tracestate_key_length_limit[tenant-241-system-14]",
        ts("foo=1", TENANT_KEY + "=1"),
        {"foo": "1", TENANT_KEY: "1"},
    ),
    _row("test_tracestate_key_length_limit[tenant-242]", ts("foo=1", "t" * 242 + "@v=1"), {}),
    _row("test_tracestate_key_length_limit[system-15]", ts("foo=1", "t@" + "v" * 15 + "=1"), {}),
    _row("test_tracestate_value_illegal_characters[equals-in-value]", ts("foo=bar=baz"), {}),
    _row("test_tracestate_value_illegal_characters[empty-value]", ts("foo=,bar=3"), {}),
]


@pytest.mark.parametrize(("headers", "expected"), TRACESTATE_CASES)
def test_tracestate_case(harness, headers, expected):
    sent = harness.one([TP, *headers])
    assert sent.traceparent.trace_id == TRACE_ID  # a bad tracestate never restarts the trace
    assert sent.tracestate == expected
    if not expected:
        assert sent.values("tracestate") == []  # nothing sent, not an empty header


def test_tracestate_multiple_headers_different_keys(harness):
    """TraceContextTest.test_tracestate_multiple_headers_different_keys: combined in order."""
    headers = [
        ("tracestate", "foo=1,bar=2"),
        ("tracestate", "rojo=1,congo=2"),
        ("tracestate", "baz=3"),
    ]
    sent = harness.one([TP, *headers])
    assert sent.traceparent.trace_id == TRACE_ID
    assert list(sent.tracestate.items()) == [
        ("foo", "1"),
        ("bar", "2"),
        ("rojo", "1"),
        ("congo", "2"),
        ("baz", "3"),
    ]


def test_tracestate_included_traceparent_missing(harness):
    """TraceContextTest.test_tracestate_included_traceparent_missing: a tracestate without a
    traceparent is discarded."""
    one = harness.one([("tracestate", "foo=1")]).tracestate
    two = harness.one([("tracestate", "foo=1,bar=2")]).tracestate
    assert one == two == {}


@pytest.mark.parametrize(
    ("traceparent", "same_trace"),
    [
        _row("AdvancedTest.test_multiple_requests_with_valid_traceparent", VALID, True),
        _row("AdvancedTest.test_multiple_requests_without_traceparent", None, None),
        _row(
            "AdvancedTest.test_multiple_requests_with_illegal_traceparent",
            tp(trace="0" * 32)[1],
            False,
        ),
    ],
)
def test_multiple_requests(harness, traceparent, same_trace):
    headers = [("traceparent", traceparent)] if traceparent else []
    sent = [c.traceparent for c in harness.send(headers, count=3)]
    assert len({t.parent_id for t in sent}) == 3  # a new parent-id per outgoing call
    if same_trace:
        assert {t.trace_id for t in sent} == {TRACE_ID}
    elif same_trace is False:
        assert "0" * 32 not in {t.trace_id for t in sent}


def test_propagates_random_flag(harness):
    """TraceContext2Test.test_propagates_random_flag (Trace Context Level 2)."""
    sent = harness.one([tp(flags="02")]).traceparent
    assert sent.trace_id == TRACE_ID and sent.parent_id != PARENT_ID
    assert sent.flags & 0x02


@pytest.mark.skipif(
    configured() is None, reason=f"the W3C suite is not here ({SUITE_ENV}, {PYTHON_ENV} unset)"
)
def test_real_suite():
    """The suite itself against the adapter: every case passes at SPEC_LEVEL=2."""
    where = configured()
    assert where is not None
    run = run_suite(*where)
    assert len(run.results) == 41, run.output
    assert run.failed == [], run.output
