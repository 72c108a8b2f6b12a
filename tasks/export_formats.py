"""The file formats of a dataset: a frame typed by the dataset's schema, rendered to and parsed
from JSON, JSONL, CSV and Parquet bytes, every format reading back to the same DataFrame, dtypes
included; known secret values are redacted before anything is rendered."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from tasks.errors import InvalidInput
from tasks.export_models import Format
from tasks.export_schema import Column, Schema
from tasks.redaction import known_secrets, redact_values

ALL_FORMATS: tuple[Format, ...] = ("json", "jsonl", "csv", "parquet")  # the default set

_ARROW = {
    Column.int: pa.int64(),
    Column.float: pa.float64(),
    Column.str: pa.string(),
    Column.bool: pa.bool_(),
    Column.timestamp: pa.timestamp("us", tz="UTC"),
    Column.json: pa.string(),  # nested values travel as JSON text in Parquet and CSV
}
_PANDAS = {
    Column.int: "Int64",
    Column.float: "float64",
    Column.str: "string",
    Column.bool: "boolean",
    Column.timestamp: "datetime64[us, UTC]",
    Column.json: "object",
}


def arrow_schema(schema: Schema) -> pa.Schema:
    """The explicit Arrow schema every Parquet file of a dataset is written with."""
    return pa.schema([(name, _ARROW[kind]) for name, kind in schema.items()])


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _decode_json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def normalize(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """`frame` with exactly the schema's columns, in order, with the schema's dtypes."""
    missing = [name for name in schema if name not in frame.columns]
    if missing:
        raise InvalidInput(f"records lack schema columns {missing}")
    out = pd.DataFrame(index=range(len(frame)))
    for name, kind in schema.items():
        col = frame[name].reset_index(drop=True)
        if kind is Column.timestamp:
            out[name] = pd.to_datetime(col, utc=True, format="ISO8601").astype(_PANDAS[kind])
        elif kind is Column.json:
            out[name] = pd.Series([_decode_json(v) for v in col], dtype="object")
        elif kind is Column.str:
            out[name] = col.astype("string")
        else:
            out[name] = col.astype(_PANDAS[kind])
    return out


def to_frame(records: Iterable[Mapping[str, Any] | BaseModel], schema: Schema) -> pd.DataFrame:
    rows = [r.model_dump() if isinstance(r, BaseModel) else dict(r) for r in records]
    missing = sorted({name for row in rows for name in schema if name not in row})
    if missing:
        raise InvalidInput(f"records lack schema columns {missing}")
    return normalize(pd.DataFrame(rows, columns=list(schema)), schema)


def without_secrets(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """`frame` with every known secret in its text and JSON cells replaced by [REDACTED]
    (tasks/redaction.py): no dataset file holds one, whatever its producer put in a row."""
    secrets = known_secrets()
    text = [n for n, kind in schema.items() if kind in (Column.str, Column.json)]
    if not secrets or not text:
        return frame
    clean = frame.copy()
    for name in text:
        values = [redact_values(v, secrets) if isinstance(v, str | dict | list) else v
                  for v in frame[name]]  # fmt: skip
        clean[name] = pd.Series(values, index=frame.index, dtype=frame[name].dtype)
    return clean


def _plain_records(frame: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    records = []
    for row in frame.itertuples(index=False, name=None):
        record = {}
        for (name, kind), value in zip(schema.items(), row, strict=True):
            if kind is not Column.json and pd.isna(value):
                value = None
            elif kind is Column.timestamp:
                value = value.isoformat()
            elif kind in (Column.int,):
                value = int(value)
            elif kind is Column.bool:
                value = bool(value)
            record[name] = value
        records.append(record)
    return records


def flat_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """JSON columns as JSON text (for CSV and Parquet)."""
    flat = frame.copy()
    for name, kind in schema.items():
        if kind is Column.json:
            flat[name] = [
                None if v is None else json.dumps(v, default=_json_default, sort_keys=True)
                for v in frame[name]
            ]
    return flat


def render(frame: pd.DataFrame, schema: Schema, fmt: Format) -> bytes:
    """The bytes of `frame` in format `fmt`."""
    if fmt == "json":
        records = _plain_records(frame, schema)
        return json.dumps(records, default=_json_default, ensure_ascii=False).encode()
    if fmt == "jsonl":
        records = _plain_records(frame, schema)
        return "".join(
            json.dumps(r, default=_json_default, ensure_ascii=False) + "\n" for r in records
        ).encode()
    if fmt == "csv":
        flat = flat_frame(frame, schema)
        for name, kind in schema.items():
            if kind is Column.timestamp:
                flat[name] = [None if pd.isna(v) else v.isoformat() for v in flat[name]]
        return flat.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode()
    if fmt == "parquet":
        table = pa.Table.from_pandas(
            flat_frame(frame, schema), schema=arrow_schema(schema), preserve_index=False
        )
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()
    raise InvalidInput(f"unknown export format {fmt!r}; expected one of {list(ALL_FORMATS)}")


def parse(data: bytes, schema: Schema, fmt: Format) -> pd.DataFrame:
    """Inverse of `render`."""
    if fmt == "json":
        frame = pd.DataFrame(json.loads(data), columns=list(schema))
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        frame = pd.DataFrame(rows, columns=list(schema))
    elif fmt == "csv":
        dtypes = {n: "string" for n, k in schema.items() if k in (Column.str, Column.json)}
        frame = pd.read_csv(io.BytesIO(data), dtype=dtypes, keep_default_na=True)
    elif fmt == "parquet":
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
    else:
        raise InvalidInput(f"unknown export format {fmt!r}")
    return normalize(frame, schema)
