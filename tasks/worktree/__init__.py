"""Autonomous worktree deployment (docs/worktree.md).

Pure modules (no Prefect): `models` (requests, results, registry entries), `preflight` (checks
before anything is created), `registry` (environment_registry.json, per host, and port
allocation), `gitops` (worktrees via GitPython, and what a removal would destroy),
`environment` (a service's variables, the `.env` file, redaction), `secret_names`, `process`
(install/start/stop by process identity), `log_relay` (a service's log, secrets redacted),
`health` (waiting for health), `deploy`, `monitor`, `teardown`, `sample_repo`. The Prefect
@task wrappers and undo hooks live in `tasks.worktree.prefect_tasks`; the dataset's row model
in `datasets`, the run's story lines (and the metrics recorded with them) in `story`; the
artifacts, events and export in `publish` (edge, Prefect).
"""
