"""Bad trace input is rejected with a clear error before any call is made."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from tasks.trace.models import DEFAULT_PATHS, TraceRequest


def request(*systems, **extra):
    return TraceRequest.model_validate({"workflow_id": "wf", "systems": list(systems), **extra})


def system(name, **fields):
    return {"name": name, "url": "http://127.0.0.1:4000", **fields}


@pytest.mark.parametrize(
    "url",
    [
        "localhost:4000",
        "ftp://127.0.0.1",
        "http://",
        "http://[::1",
        "http://h/x?q=1",
        "",
        "http://127.0.0.1:99999",
        "http://exa mple.com",
        "http://bad_host",
    ],
)
def test_malformed_url_is_named(url):
    with pytest.raises(ValidationError, match=f"url {re.escape(repr(url))} is malformed"):
        request(system("a", url=url))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://admin:Sup3rS3cret@host", "https://host"),
        ("http://admin:Sup3rS3cret@[::1", "http://[::1"),
        ("http://Sup3rS3cret@h", "http://h"),
    ],
)
def test_a_refused_url_with_credentials_is_named_without_them(url, shown):
    with pytest.raises(ValidationError) as refused:
        request(system("a", url=url))
    (error,) = refused.value.errors()
    assert error["loc"][-1] == "url" and f"url {shown!r} is malformed" in error["msg"]
    assert "Sup3rS3cret" not in error["msg"]


@pytest.mark.parametrize(
    "url", ["http://localhost:4000", "https://api.example.com/v1", "http://[::1]:80"]
)
def test_wellformed_urls_are_kept_without_trailing_slash(url):
    assert request(system("a", url=url + "/")).systems[0].url == url


def test_duplicate_system_names_are_named():
    with pytest.raises(ValidationError, match=r"duplicate system names \['a'\]"):
        request(system("a"), system("b"), system("a"))


def test_cycle_is_named_in_error():
    with pytest.raises(ValidationError, match="system cycle: a -> c -> b -> a"):
        request(
            system("a", depends_on=["c"]),
            system("b", depends_on=["a"]),
            system("c", depends_on=["b"]),
        )


def test_unknown_dependency_is_named():
    with pytest.raises(ValidationError, match="'a' depends on unknown system 'ghost'"):
        request(system("a", depends_on=["ghost"]))


@pytest.mark.parametrize("timeout", [-1, 0, -0.5])
def test_non_positive_timeout_is_rejected(timeout):
    with pytest.raises(ValidationError, match=f"timeout_s {float(timeout)} must be a positive"):
        request(system("a", timeout_s=timeout))


def test_non_positive_timeout_multiplier_is_rejected():
    with pytest.raises(ValidationError, match=r"timeout_multiplier -2\.0 must be a positive"):
        request(system("a"), timeout_multiplier=-2)


def test_baggage_keys_must_be_w3c_tokens():
    with pytest.raises(ValidationError, match="not W3C baggage keys"):
        request(system("a"), baggage={"has space": "x"})


def test_system_types_get_their_default_paths():
    r = request(
        system("p", type="phoenix"), system("n", type="n8n"), system("x", type="xavos"),
        system("g"), system("c", type="xavos", path="/custom"),
    )  # fmt: skip
    paths = {s.name: s.path for s in r.systems}
    assert paths == {
        "p": "/api/reactor/execute",
        "n": "/webhook/reactor-integration",
        "x": "/api/coordination/execute",
        "g": DEFAULT_PATHS["generic"],
        "c": "/custom",
    }
    assert r.system("p").endpoint == "http://127.0.0.1:4000/api/reactor/execute"


def test_unknown_system_type_is_rejected():
    with pytest.raises(ValidationError, match="phoenix"):
        request(system("a", type="kafka"))


def test_health_paths_default_by_type_and_null_skips_the_check():
    r = request(
        system("n", type="n8n"), system("p", type="phoenix"), system("g"),
        system("c", type="n8n", health_path="/custom"), system("off", health_path=None),
    )  # fmt: skip
    paths = {s.name: s.health_path for s in r.systems}
    assert paths == {"n": "/healthz", "p": "/health", "g": "/health", "c": "/custom", "off": None}
    assert r.system("n").health_expects_json and not r.system("p").health_expects_json
