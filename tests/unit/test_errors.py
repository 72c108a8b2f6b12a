"""Every error the project raises holds no known secret in its message, whatever built it: the
message becomes a Prefect state message, a pickled result and the CLI's error line."""

from __future__ import annotations

import pickle

from tasks.errors import RolledBack, ServiceUnhealthy
from tasks.redaction import REDACTED

KEY = "sk-live-errors-0123456789"


def test_a_project_error_quoting_a_secret_is_redacted_and_pickles_redacted(monkeypatch):
    monkeypatch.setenv("SERVICE_API_SECRET", KEY)
    error = ServiceUnhealthy(f"system 'hook' (http://127.0.0.1:1/hooks/{KEY}): HTTP 401")
    assert str(error) == f"system 'hook' (http://127.0.0.1:1/hooks/{REDACTED}): HTTP 401"
    assert KEY.encode() not in pickle.dumps(error)


def test_a_rolled_back_transaction_names_its_cause_redacted(monkeypatch):
    monkeypatch.setenv("SERVICE_API_SECRET", KEY)
    undone = RolledBack(f"swarm coordination failed: bad key {KEY}", ["released work_a"])
    assert KEY not in str(undone) and KEY not in undone.message
    assert undone.message == f"swarm coordination failed: bad key {REDACTED}"
