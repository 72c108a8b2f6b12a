"""One Prefect flow module per scenario (plus the health monitor and teardown): orchestration
only; the work is in tasks/."""
