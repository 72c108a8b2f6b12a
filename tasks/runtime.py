"""How the flows run: `reactor_flow`, the one decorator every flow in flows/ is made with (the
task runner chosen from settings, parameter validation, the result options, telemetry), and the
console log without tracebacks when the CLI asks for it. Imports Prefect (edge module)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from prefect import Flow, flow
from prefect.context import SyncClientContext
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks import resume
from tasks.resume import result_storage
from tasks.settings import Settings, get_settings
from tasks.telemetry import configure_telemetry

P = ParamSpec("P")
R = TypeVar("R")

# "0": Prefect's console log leaves tracebacks out (the run's logs on the server keep them), so
# a failed run ends in the CLI's one `error:` line; the CLI sets it (`reactor --verbose`: "1")
CONSOLE_TRACEBACKS_ENV = "REACTOR_CONSOLE_TRACEBACKS"


class _NoTraceback(logging.Formatter):
    """Wraps the console handler's formatter: the same line, without the traceback."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        # a copy: the same record goes on to the API handler, traceback and all
        bare = logging.makeLogRecord(
            {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None}
        )
        return self.inner.format(bare)


def console_without_tracebacks() -> None:
    """Prefect's console handler(s) print log lines without their tracebacks."""
    import prefect.main  # noqa: F401 - configures Prefect's logging (its console handler)

    for logger in (logging.getLogger(), logging.getLogger("prefect")):
        for handler in logger.handlers:
            formatter = handler.formatter
            if type(handler).__name__ == "PrefectConsoleHandler" and not isinstance(
                formatter, _NoTraceback
            ):
                handler.setFormatter(_NoTraceback(formatter))


if os.environ.get(CONSOLE_TRACEBACKS_ENV) == "0":
    console_without_tracebacks()


class SharedClientTaskRunner(ThreadPoolTaskRunner):
    """Prefect's thread pool, with one sync API client shared by every task run it starts.

    A sync task run looks for a `SyncClientContext` in its thread's context and makes a new
    client when there is none, twice per run (`initialize_run` and `hydrated_context` in
    `prefect/task_engine.py`); each new client parses certifi's CA bundle into a TLS context,
    even for an `http://` API. A sync flow's own client context reaches its task threads, so
    there the client is shared; an `async def` flow has only an async client, so every task run
    of our flows paid for two clients (what that cost: docs/operations.md, "What it costs").
    This runner is what a sync flow gets for free: the client is opened with the runner and
    closed after its last task run (httpx clients are thread-safe). A runner inside a task run
    that already has one (a subflow, or the copy Prefect enters per task run) uses that one."""

    def __enter__(self) -> SharedClientTaskRunner:
        super().__enter__()
        self._owned: SyncClientContext | None = None
        self._shared = SyncClientContext.get()
        if self._shared is None:
            self._owned = self._shared = SyncClientContext()
            self._owned.client.__enter__()
            # the flow body sees it too: sync tasks it calls directly, artifacts it updates
            self._token = SyncClientContext.__var__.set(self._owned)
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)  # the pool's threads are done with the client
        if self._owned is not None:
            with contextlib.suppress(ValueError):  # exited from another context: nothing set
                SyncClientContext.__var__.reset(self._token)
            self._owned.client.__exit__(*exc)
            self._owned = None

    @contextlib.contextmanager
    def _with_client(self) -> Iterator[None]:
        # set, not entered: the context is copied into the task's thread at submit, and the
        # variable is reset here at once (entering again would only count a nesting level)
        token = SyncClientContext.__var__.set(self._shared)
        try:
            yield
        finally:
            SyncClientContext.__var__.reset(token)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        with self._with_client():
            return super().submit(*args, **kwargs)


def task_runner(settings: Settings | None = None, concurrent: bool = True) -> TaskRunner:
    """`REACTOR_TASK_RUNNER=threads` (default, `REACTOR_MAX_WORKERS` threads) or `dask`
    (`REACTOR_DASK_ADDRESS` of a running scheduler, else a local cluster). A flow that is not
    `concurrent` (it calls its tasks one at a time) gets the threads whatever the setting: no
    cluster is started for a flow that submits nothing."""
    settings = settings or get_settings()
    if settings.task_runner == "dask" and concurrent:
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 2})
    return SharedClientTaskRunner(max_workers=settings.max_workers)


def unpersisted_results() -> dict[str, Any]:
    """The `@flow` options of a flow whose own result is not persisted (`resumable()` in
    `tasks/resume.py` is the persisted counterpart): persistence off and the project's result
    storage, both stated on the decorator.

    Left unset, Prefect 3.9.1 asks the server for its default result storage twice at every
    flow run (a sync and an async `GET /api/admin/storage`; what that costs:
    docs/operations.md, "What it costs"); stated, it asks nothing. A task that persists its own
    result (`persist_result=True`) writes it where `result_storage()` says, like the tasks of
    the resumable flows."""
    return {"persist_result": False, "result_storage": result_storage()}


def _telemetry_for_this_run(*_: Any) -> None:
    # an `on_running` hook: the run's own settings (a test's or a worker's coordination dir)
    configure_telemetry(get_settings())


def reactor_flow(
    name: str, *, resumable: bool = False, concurrent: bool = True, **options: Any
) -> Callable[[Callable[P, R]], Flow[P, R]]:
    """The project's `@flow`: a Prefect `Flow` of the decorated function (so entrypoints,
    `prefect deploy`, `.serve` and `from_source` load it as any flow), with

    - the task runner of `task_runner(concurrent=…)`;
    - parameters validated against the signature (`validate_parameters=True`);
    - its result persisted where `tasks.resume.result_storage()` says when `resumable` (a
      retried run loads what its tasks finished), else `unpersisted_results()`;
    - telemetry: configured when the flow is defined, because Prefect opens the flow-run span
      (the parent of every task span) before any hook or body runs and records it only if a
      provider exists by then; and again as each run starts, for the run's own settings.

    `options` are any other `@flow` options (`flow_run_name`, `retries`, …)."""
    configure_telemetry()
    results = resume.resumable() if resumable else unpersisted_results()

    def decorate(fn: Callable[P, R]) -> Flow[P, R]:
        return flow(
            fn,
            name=name,
            task_runner=task_runner(concurrent=concurrent),
            validate_parameters=True,
            on_running=[_telemetry_for_this_run],
            **results,
            **options,
        )

    return decorate


def current_run_id() -> str:
    """The Prefect flow run id inside a flow (so exports cross-reference the UI), else a
    fresh `coord_<ns>` id."""
    from prefect.runtime import flow_run

    from tasks.ids import new_id

    run_id = flow_run.get_id()
    return str(run_id) if run_id else new_id("coord")
