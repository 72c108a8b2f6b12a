"""A dataset's schema: its column types (`Column`), derived from the dataset's pydantic row model
by `schema_of`, the one way a dataset declares its columns. Plain pydantic (no pandas, pyarrow
or Prefect), so a row model module stays light; the Arrow and pandas types of each column live
with the file formats (`tasks/export_formats.py`)."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from datetime import datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from tasks.errors import InvalidInput

PARTITION = "date"  # the hive partition key; no dataset may have a column of that name


class Column(StrEnum):
    """Column types a dataset schema may use. `json` holds nested lists/dicts."""

    int = "int"
    float = "float"
    str = "str"
    bool = "bool"
    timestamp = "timestamp"
    json = "json"


Schema = Mapping[str, Column]

_FROM_PYTHON: dict[type, Column] = {
    bool: Column.bool,  # before int: bool is a subclass of int
    int: Column.int,
    float: Column.float,
    str: Column.str,
    datetime: Column.timestamp,
    Path: Column.str,
}


def _column_of(annotation: Any) -> Column:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = {_column_of(a) for a in typing.get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else Column.json
    if origin is Literal:
        values = typing.get_args(annotation)
        return _column_of(type(values[0])) if values else Column.str
    if origin is typing.Annotated:
        return _column_of(typing.get_args(annotation)[0])
    if origin is not None:  # list[...], dict[...], tuple[...]
        return Column.json
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return Column.str if issubclass(annotation, str) else Column.json
        for python_type, kind in _FROM_PYTHON.items():
            if issubclass(annotation, python_type):
                return kind
    return Column.json


def schema_of(model: type[BaseModel]) -> dict[str, Column]:
    """The dataset schema of a row model: one column per field, in field order
    (`int` → int, `datetime` → timestamp, `X | None` → X, lists/dicts/models → json)."""
    return {name: _column_of(field.annotation) for name, field in model.model_fields.items()}


def as_schema(row_model: type[BaseModel]) -> dict[str, Column]:
    """The column types of a dataset's row model, checked for the reserved partition column."""
    if not (isinstance(row_model, type) and issubclass(row_model, BaseModel)):
        raise InvalidInput(
            f"a dataset's schema is its row model (a pydantic model class), not {row_model!r}"
        )
    schema = schema_of(row_model)
    if PARTITION in schema:
        raise InvalidInput(
            f"column {PARTITION!r} is reserved for the date partition of every dataset; "
            "rename it (e.g. 'day' or 'created_on')"
        )
    return schema
