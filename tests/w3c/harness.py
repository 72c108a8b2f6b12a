"""A small stand-in for the W3C suite's harness, for the offline cases table: it sends one
request with the headers under test to the adapter service and records the headers of the
callbacks the service makes, then reads them as the suite does."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.loopback import QuietHandler, reply, serving
from tests.w3c.service import serve_adapter

Headers = list[tuple[str, str]]

# The suite's own reading of what the service sends (test/tracecontext/*.py at d782773).
TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_KEY = r"[a-z][_0-9a-z\-*/]{0,255}|[0-9a-z][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_MEMBER = re.compile(rf"^({_KEY})=({_VALUE})$")
_DELIMITER = re.compile(r"[ \t]*,[ \t]*")


@dataclass
class Traceparent:
    version: str
    trace_id: str
    parent_id: str
    flags: int


@dataclass
class Callback:
    headers: Headers

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def traceparent(self) -> Traceparent:
        [value] = self.values("traceparent")  # exactly one, as the suite asserts
        match = TRACEPARENT.match(value)
        assert match, f"outgoing traceparent {value!r} is not version-00 format"
        return Traceparent(match[1], match[2], match[3], int(match[4], 16))

    @property
    def tracestate(self) -> dict[str, str]:
        """The outgoing tracestate as the suite parses it (an invalid member fails the test)."""
        members: dict[str, str] = {}
        for header in self.values("tracestate"):
            for member in _DELIMITER.split(header):
                if member:
                    match = _MEMBER.match(member)
                    assert match, f"outgoing tracestate member {member!r} is invalid"
                    members.setdefault(match[1], match[2])
        return members


class _Recorder(QuietHandler):
    received: dict[str, Headers]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.received[self.path.lstrip("/")] = list(self.headers.items())
        reply(self, b"null")


class Harness:
    def __init__(self, service_url: str, recorder_url: str, received: dict[str, Headers]):
        self.service = urlsplit(service_url)
        self.recorder_url = recorder_url
        self.received = received

    def send(self, headers: Headers, count: int = 1) -> list[Callback]:
        """POST to the service with `headers` as sent (names, casing, repeats and whitespace
        kept), asking for `count` callbacks; the callbacks' headers in order."""
        scope = uuid.uuid4().hex
        body = json.dumps(
            [{"url": f"{self.recorder_url}/{scope}.{i}", "arguments": []} for i in range(count)]
        ).encode()
        connection = http.client.HTTPConnection(
            self.service.hostname, self.service.port, timeout=10
        )
        try:
            connection.putrequest("POST", self.service.path)
            for name, value in [*headers, ("content-type", "application/json")]:
                connection.putheader(name, value)
            connection.putheader("content-length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            response.read()
            assert response.status == 200
        finally:
            connection.close()
        return [Callback(self.received[f"{scope}.{i}"]) for i in range(count)]

    def one(self, headers: Headers) -> Callback:
        return self.send(headers)[0]


@contextlib.contextmanager
def run_harness() -> Iterator[Harness]:
    """The adapter service and a callback recorder, both on loopback threads."""
    received: dict[str, Headers] = {}
    handler = type("Recorder", (_Recorder,), {"received": received})
    with serving(handler) as recorder, serve_adapter() as service:
        yield Harness(service, f"http://127.0.0.1:{recorder.server_address[1]}", received)
