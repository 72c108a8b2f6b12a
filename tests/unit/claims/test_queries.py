"""The backends' named SQL queries: `-- name:` blocks, `{{ other }}` fragments."""

from __future__ import annotations

import pytest

from tasks.claims import queries


def test_a_block_is_named_and_a_fragment_is_expanded_where_it_is_used():
    text = (
        "-- name: held\nstatus = 'held'\n\n"
        "-- name: count_held\n-- dropped\nSELECT count(*) FROM t WHERE {{ held }}\n"
    )
    parsed = queries.parse(text)
    assert parsed["count_held"] == "SELECT count(*) FROM t WHERE status = 'held'"


@pytest.mark.parametrize(
    "text", ["-- name: a\nx\n-- name: a\ny\n", "-- name: a\n{{ b }}\n-- name: b\n{{ a }}\n"]
)
def test_a_name_defined_twice_or_a_fragment_including_itself_is_refused(text):
    with pytest.raises(ValueError, match="'a'"):
        queries.parse(text)


def test_both_backends_statement_files_load_from_the_package():
    for name in ("sqlite.sql", "postgres.sql"):
        loaded = queries.load(name)
        assert {"get", "dead_letter", "renew", "complete", "blocked"} <= set(loaded)
        assert "{{" not in "".join(loaded.values())
