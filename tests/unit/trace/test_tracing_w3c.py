"""W3C Trace Context and Baggage conformance of tasks/tracing.py."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider

from tasks.tracing import (
    add_tracestate_entry,
    decode_baggage,
    encode_baggage,
    extract_context,
    format_span_id,
    format_trace_id,
    inject_headers,
    parse_tracestate,
    truncate_tracestate,
    with_baggage,
    with_tracestate,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
TRACER = TracerProvider().get_tracer("w3c-test")  # a private SDK tracer: real span ids


def span_context(ctx):
    return trace.get_current_span(ctx).get_span_context()


def test_valid_traceparent_is_continued():
    sc = span_context(extract_context({"traceparent": PARENT}))
    assert sc.is_valid and sc.is_remote
    assert format_trace_id(sc.trace_id) == TRACE_ID
    assert format_span_id(sc.span_id) == "b7ad6b7169203331"


def test_duplicated_traceparent_starts_a_new_trace():
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    for headers in (
        [("traceparent", PARENT), ("traceparent", other)],
        {"traceparent": [PARENT, PARENT]},
    ):
        assert not span_context(extract_context(headers)).is_valid
        with TRACER.start_as_current_span("next", context=extract_context(headers)) as span:
            assert format_trace_id(span.get_span_context().trace_id) != TRACE_ID


@pytest.mark.parametrize(
    "value",
    [
        PARENT.upper(),  # hex must be lowercase
        f"ff-{TRACE_ID}-b7ad6b7169203331-01",  # version ff is invalid
        f"00-{'0' * 32}-b7ad6b7169203331-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID}-b7ad6b7169203331-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID}-b7ad6b716920333-01",  # short parent id
        "garbage",
    ],
)
def test_invalid_traceparent_starts_a_new_trace(value):
    assert not span_context(extract_context({"traceparent": value})).is_valid


def test_higher_version_is_parsed_for_its_known_fields():
    sc = span_context(extract_context({"traceparent": f"cc-{TRACE_ID}-b7ad6b7169203331-01-future"}))
    assert sc.is_valid and format_trace_id(sc.trace_id) == TRACE_ID


def test_outgoing_traceparent_is_version_00_without_unknown_flags():
    ctx = extract_context({"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-ff"})
    with TRACER.start_as_current_span("call", context=ctx):
        version, trace_id, parent, flags = inject_headers()["traceparent"].split("-")
    assert (version, trace_id) == ("00", TRACE_ID)
    # sampled (0x01) is kept; bits Trace Context defines no meaning for are not forwarded
    # (0x02 is Level 2's "random" flag, which the OTel SDK keeps for the trace)
    assert int(flags, 16) & 0x01 and not int(flags, 16) & 0xFC
    assert parent != "b7ad6b7169203331"


def test_each_outgoing_call_gets_its_own_parent_id():
    ctx = extract_context({"traceparent": PARENT})
    sent = []
    for _ in range(5):
        with TRACER.start_as_current_span("call", context=ctx):
            sent.append(inject_headers()["traceparent"])
    assert len({h.split("-")[1] for h in sent}) == 1
    assert len({h.split("-")[2] for h in sent}) == 5


def test_tracestate_with_more_than_32_members_is_dropped_whole():
    assert len(parse_tracestate(",".join(f"k{i}=v{i}" for i in range(32)))) == 32
    assert len(parse_tracestate(",".join(f"k{i}=v{i}" for i in range(33)))) == 0


def test_tracestate_duplicate_key_keeps_the_leftmost():
    state = parse_tracestate(["a=1, b=2", "a=3,c=4"])
    assert list(state.items()) == [("a", "1"), ("b", "2"), ("c", "4")]


@pytest.mark.parametrize("bad", ["BAD=x", "=nokey", "d", "k=", "k=v ,x@=1", "a = 1", "k=a=b"])
def test_one_invalid_member_drops_the_whole_tracestate(bad):
    assert len(parse_tracestate(["a=1, b=2", f"c=4,{bad}"])) == 0


def test_leading_spaces_of_a_value_are_kept_and_trailing_ones_are_whitespace():
    assert list(parse_tracestate("k=  v w  ,j=x\t").items()) == [("k", "  v w"), ("j", "x")]


def test_outgoing_tracestate_stays_within_512_characters():
    members = [f"k{i:02d}={'v' * 20}" for i in range(30)]  # 30 x 24 + 29 commas = 749
    ctx = extract_context({"traceparent": PARENT, "tracestate": ",".join(members)})
    with TRACER.start_as_current_span("call", context=ctx):
        header = inject_headers()["tracestate"]
    assert len(header) <= 512
    assert header == ",".join(members[:20])  # whole entries, dropped from the right


def test_truncation_drops_entries_over_128_characters_first():
    long = [f"big{i}={'x' * 200}" for i in range(2)]
    short = [f"s{i:02d}={'y' * 30}" for i in range(12)]  # 12 x 34 + 11 = 419
    state = parse_tracestate(",".join([short[0], long[0], *short[1:6], long[1], *short[6:]]))
    assert truncate_tracestate(state).to_header() == ",".join(short)


def test_truncation_keeps_a_long_entry_when_the_rest_fits():
    state = parse_tracestate(f"a=1,big={'x' * 200},b=2")
    assert truncate_tracestate(state) == state


def test_tracestate_survives_extraction_with_the_list_rules():
    ctx = extract_context({"traceparent": PARENT, "tracestate": "x=1,x=2,y@vendor=3"})
    assert span_context(ctx).trace_state.to_header() == "x=1,y@vendor=3"


def test_our_tracestate_entry_goes_leftmost_replacing_an_older_one():
    state = add_tracestate_entry(parse_tracestate("a=1,reactor=old,b=2"), "reactor", "new")
    assert state.to_header() == "reactor=new,a=1,b=2"


def test_adding_to_a_full_tracestate_drops_the_rightmost_member():
    full = parse_tracestate(",".join(f"k{i}=v" for i in range(32)))
    state = add_tracestate_entry(full, "reactor", "x")
    assert len(state) == 32 and next(iter(state)) == "reactor" and "k31" not in state


def test_invalid_tracestate_entry_is_rejected():
    with pytest.raises(ValueError, match="tracestate entry"):
        add_tracestate_entry(parse_tracestate(""), "Upper", "x")


def test_with_tracestate_is_propagated_on_outgoing_calls():
    ctx = with_tracestate(
        "reactor", "coord_1", extract_context({"traceparent": PARENT, "tracestate": "a=1"})
    )
    with TRACER.start_as_current_span("call", context=ctx):
        assert inject_headers()["tracestate"] == "reactor=coord_1,a=1"


@pytest.mark.parametrize(
    "value", ["hello world", "a,b;c=d", "100%", "a+b", "ünïcødé ✓", 'q"uote\\', "=x="]
)
def test_baggage_values_roundtrip_percent_encoded(value):
    header = inject_headers(context=with_baggage({"k": value}))["baggage"]
    assert " " not in header and header.count(",") == 0 and header.count(";") == 0
    assert baggage.get_baggage("k", extract_context({"baggage": header})) == value


def test_space_is_encoded_as_percent_20_not_plus():
    assert encode_baggage({"tenant": "reactor demo"}) == "tenant=reactor%20demo"


def test_a_literal_plus_from_another_system_stays_a_plus():
    assert decode_baggage("k=a+b") == {"k": "a+b"}


def test_baggage_properties_are_dropped_and_whitespace_ignored():
    assert decode_baggage("k1 = v1 ;prop=1, k2=v%2C2") == {"k1": "v1", "k2": "v,2"}


def test_baggage_skips_invalid_keys_and_respects_the_member_limit():
    assert encode_baggage({"bad key": "x", "ok": "y"}) == "ok=y"
    header = encode_baggage({f"k{i}": "v" for i in range(200)})
    assert len(header.split(",")) == 180


def test_baggage_and_trace_context_travel_together():
    ctx = with_baggage({"workflow.id": "wf 1"}, extract_context({"traceparent": PARENT}))
    token = otel_context.attach(ctx)  # the SDK starts spans in the current context
    try:
        with TRACER.start_as_current_span("call"):
            headers = inject_headers()
    finally:
        otel_context.detach(token)
    back = extract_context(headers)
    assert baggage.get_baggage("workflow.id", back) == "wf 1"
    assert format_trace_id(span_context(back).trace_id) == TRACE_ID
