"""A malformed REACTOR_DATABASE_URL is one `error:` line naming the store, never any piece of
its password, even where the driver cannot parse the URL (and so cannot say which part is the
password) and quotes the token it rejects."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from reactor.cli import app

MALFORMED = {
    "bad percent-escape": "postgresql://reactor:Sup3rS3cret%zz@127.0.0.1:5432/coord",
    "slash in the password": "postgresql://reactor:Sup3r/S3cret%zz@127.0.0.1:5432/coord",
    "bad port": "postgresql://reactor:Sup3r%2FS3cret@127.0.0.1:port/coord",
    "unterminated quote": "host=127.0.0.1 dbname=coord password='Sup3r S3cret",
}


@pytest.mark.parametrize("dsn", MALFORMED.values(), ids=MALFORMED.keys())
def test_claims_list_with_a_malformed_url_names_no_piece_of_the_password(dsn, tmp_path):
    result = CliRunner().invoke(
        app,
        ["claims", "list", "--coordination-dir", str(tmp_path)],
        env={"REACTOR_DATABASE_URL": dsn},
    )
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    # the command's own output is one error line; the runner's stderr also takes whatever
    # another thread of this pytest process logs meanwhile, which must not fail the test
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: cannot reach the PostgreSQL coordination database")
    assert "S3cret" not in result.stderr and "Sup3r" not in result.stderr
