"""CLI conventions shared by every command.

- `--json` prints the flow's result model as JSON on stdout; logs go to stderr (Prefect's
  console handler already writes there).
- Bad input exits non-zero with one specific line on stderr: `error: <message>`.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
import yaml
from pydantic import BaseModel, ValidationError

from tasks.errors import ReactorError

M = TypeVar("M", bound=BaseModel)

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def validation_message(exc: ValidationError) -> str:
    """One line naming the first offending field and what was wrong."""
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for our ValueErrors
    where = ".".join(str(p) for p in first["loc"])
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the errors users cause into one-line messages and non-zero exits."""
    try:
        yield
    except ValidationError as exc:
        fail(validation_message(exc))
    except (ReactorError, ValueError, FileNotFoundError, IsADirectoryError) as exc:
        fail(str(exc), EXIT_BAD_INPUT if isinstance(exc, ValueError) else EXIT_FAILED)


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
