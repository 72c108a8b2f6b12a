"""CLI conventions shared by every command.

- `--json` prints the flow's result model as JSON on stdout; logs go to stderr (Prefect's
  console handler already writes there).
- Bad input exits non-zero with one specific line on stderr: `error: <message>`; so does a
  failure of what the command depends on (the Prefect API, a database, the object store, a
  temporary server that does not come up) and a flow's own failure, naming the cause. The
  traceback is printed only with `reactor --verbose …` (the run's logs on the server keep it).
- A command that runs flows says on stderr which Prefect server it uses (`use_server`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import unquote

import typer
import yaml
from pydantic import BaseModel, ValidationError

from tasks.errors import ReactorError
from tasks.redaction import url_password, without_credentials

M = TypeVar("M", bound=BaseModel)

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
VERBOSE_ENV = "REACTOR_VERBOSE"  # set by `reactor --verbose`: tracebacks on the console
_EPHEMERAL_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    for password in sorted(_url_passwords(), key=len, reverse=True):
        message = message.replace(password, "***")
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def validation_message(exc: ValidationError) -> str:
    """One line naming the first offending field and what was wrong."""
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for our ValueErrors
    where = ".".join(str(p) for p in first["loc"])
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _url_of(exc: Exception) -> str | None:
    with contextlib.suppress(RuntimeError, AttributeError):  # httpx: no request attached
        url = exc.request.url  # type: ignore[attr-defined]
        return f"{url.scheme}://{url.host}:{url.port or ''}".rstrip(":")
    return None


def _is(exc: BaseException, module: str, *names: str) -> bool:
    """`exc` is one of `module`'s exception classes (only when that module is loaded: the
    error path imports nothing heavy)."""
    loaded = sys.modules.get(module)
    classes = tuple(c for n in names if isinstance(c := getattr(loaded, n, None), type))
    return bool(classes) and isinstance(exc, classes)


def error_message(exc: BaseException) -> tuple[str, int]:
    """The one line (without `error: `) and the exit code for an exception that ends a
    command: what the user got wrong, or which dependency failed and what to do."""
    if isinstance(exc, ValidationError):
        return validation_message(exc), EXIT_BAD_INPUT
    if isinstance(exc, ValueError):
        return str(exc), EXIT_BAD_INPUT
    if isinstance(exc, ReactorError | FileNotFoundError | IsADirectoryError):
        return str(exc), EXIT_FAILED
    if type(exc).__name__ == "ServerUnavailable":  # deployments.server's
        return str(exc), EXIT_FAILED
    if isinstance(exc, RuntimeError) and _EPHEMERAL_TIMEOUT in str(exc):
        return (
            "the temporary Prefect server for this command did not come up in time: start"
            " one with `make server` (commands in this checkout then use it) or set"
            " PREFECT_API_URL to a running server",
            EXIT_FAILED,
        )
    if _is(exc, "httpx", "TransportError"):
        configured = without_credentials(os.environ.get("PREFECT_API_URL", ""))
        where = _url_of(exc) or configured or "the Prefect API"
        return (
            f"cannot reach {where} ({type(exc).__name__}: {_first_line(exc)}); is the Prefect"
            " server up? (`make server`, or check PREFECT_API_URL)",
            EXIT_FAILED,
        )
    if _is(exc, "prefect.exceptions", "PrefectHTTPStatusError"):
        return f"the Prefect API refused a request: {_first_line(exc)}", EXIT_FAILED
    if _is(exc, "psycopg", "Error") or _is(exc, "sqlite3", "Error"):
        return f"database: {type(exc).__name__}: {_first_line(exc)}", EXIT_FAILED
    if _is(exc, "botocore.exceptions", "BotoCoreError", "ClientError"):
        return f"object store: {type(exc).__name__}: {_first_line(exc)}", EXIT_FAILED
    return f"{type(exc).__name__}: {_first_line(exc)}", EXIT_FAILED


def _url_passwords() -> set[str]:
    """The passwords in the environment's URLs, as written and decoded: found even where the
    URL is malformed and no parser would name them."""
    found = set()
    for value in os.environ.values():
        if password := url_password(value):
            found |= {password, unquote(password)}
    return {p for p in found if len(p) >= 4}


def _redacted(message: str) -> str:
    """`message` without a secret this process knows (configured keys; `fail` removes the
    URL passwords)."""
    try:
        from tasks.redaction import known_secrets, redact_text

        return redact_text(message, known_secrets())
    except Exception:  # settings that do not load: the message as it is, never a crash here
        return message


def report_error(exc: BaseException) -> NoReturn:
    """End the command on `exc` with one `error:` line (the traceback first with --verbose)."""
    if verbose():
        traceback.print_exception(exc)
    message, code = error_message(exc)
    complete = isinstance(exc, ReactorError | OSError) or type(exc).__name__ == "ServerUnavailable"
    if not verbose() and code == EXIT_FAILED and not complete:
        message += " (`reactor --verbose …` shows the traceback)"
    fail(_redacted(message), code)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn what ends a command (bad input, an unreachable dependency, a failed flow) into
    one-line messages and non-zero exits."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):  # already said, or click's own
        raise
    except Exception as exc:
        report_error(exc)


def use_server() -> None:
    """Before a command that runs flows: choose the Prefect server (PREFECT_API_URL's, else
    this checkout's `make server`, else a temporary one) and say which on stderr."""
    from deployments.server import (
        EPHEMERAL_TIMEOUT_ENV,
        EPHEMERAL_TIMEOUT_S,
        describe,
        select_server,
    )

    try:
        server = select_server()
    except Exception as exc:
        report_error(exc)
    if server is None:
        os.environ.setdefault(EPHEMERAL_TIMEOUT_ENV, str(EPHEMERAL_TIMEOUT_S))
    else:
        os.environ["PREFECT_API_URL"] = server.api_url
    typer.echo(describe(server), err=True)
    # tasks.runtime.CONSOLE_TRACEBACKS_ENV, read when the flows are imported (importing
    # tasks.runtime here would load Prefect before an input error is reported)
    os.environ["REACTOR_CONSOLE_TRACEBACKS"] = "1" if verbose() else "0"


C = TypeVar("C", bound=Callable[..., Any])


def needs_server(command: C) -> C:
    """Mark a command that runs flows or calls the Prefect API: `reactor` chooses its server
    and says which (`use_server`) after the arguments are parsed, before the command starts."""
    command.needs_server = True  # type: ignore[attr-defined]
    return command


def load_document(path: Path) -> Any:
    """A JSON or YAML file's content, with a clear error when it is missing or malformed."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}); save it as UTF-8 JSON or YAML"
        ) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc


def load_model(path: Path, model: type[M]) -> M:
    return model.model_validate(load_document(path))


def print_json(result: BaseModel | dict[str, Any] | list[Any]) -> None:
    """The result on stdout as JSON, nothing else."""
    if isinstance(result, BaseModel):
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    sys.stdout.flush()
