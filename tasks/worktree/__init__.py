"""Autonomous worktree deployment (SPEC §5).

Pure modules (no Prefect): `models` (request/result models and validation), `registry`
(environment_registry.json and port allocation), `gitops` (worktrees via GitPython), `process`
(install/start/stop), `health`, `plan` (pre-flight checks and dependency scheduling), `deploy`,
`monitor`, `teardown`, `sample_repo`. The Prefect @task wrappers and undo hooks live in
`tasks.worktree.prefect_tasks`.
"""
