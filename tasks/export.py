"""The one dataset exporter: records -> pandas -> JSON, JSONL, CSV, Parquet.

Layout: `<root>/<dataset>/<YYYY-MM-DD>/<run_id>.<ext>` plus `manifest.json` in that folder (schema,
row count and sha256 per file, per run). Each file is written atomically; if any format fails,
the files already written for the run are removed, so no run is half-exported.
Every format reads back (`read_export`) to the same DataFrame, dtypes included.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from tasks.errors import InvalidInput
from tasks.store import JsonStore, atomic_write_bytes

Format = Literal["json", "jsonl", "csv", "parquet"]
ALL_FORMATS: tuple[Format, ...] = ("json", "jsonl", "csv", "parquet")
MANIFEST = "manifest.json"


class Column(StrEnum):
    """Column types a dataset schema may use. `json` holds nested lists/dicts."""

    int = "int"
    float = "float"
    str = "str"
    bool = "bool"
    timestamp = "timestamp"
    json = "json"


Schema = Mapping[str, Column]

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


class ExportedFile(BaseModel):
    format: Format
    path: Path
    rows: int
    bytes: int
    sha256: str


class ExportResult(BaseModel):
    dataset: str
    run_id: str
    directory: Path
    rows: int
    files: list[ExportedFile]
    manifest: Path


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


def _flat_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
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
        flat = _flat_frame(frame, schema)
        for name, kind in schema.items():
            if kind is Column.timestamp:
                flat[name] = [None if pd.isna(v) else v.isoformat() for v in flat[name]]
        return flat.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode()
    if fmt == "parquet":
        arrow_schema = pa.schema([(n, _ARROW[k]) for n, k in schema.items()])
        table = pa.Table.from_pandas(
            _flat_frame(frame, schema), schema=arrow_schema, preserve_index=False
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


def export_dataset(
    records: Iterable[Mapping[str, Any] | BaseModel] | pd.DataFrame,
    dataset: str,
    run_id: str,
    schema: Schema,
    formats: Sequence[Format] = ALL_FORMATS,
    root: Path | str = Path("exports"),
    day: date | None = None,
) -> ExportResult:
    """Write `records` as `dataset` for `run_id` in every format of `formats`."""
    unknown = [f for f in formats if f not in ALL_FORMATS]
    if unknown or not formats:
        raise InvalidInput(f"export formats {unknown or '[]'} invalid; choose from {ALL_FORMATS}")
    for part, label in ((dataset, "dataset"), (run_id, "run_id")):
        if not part or "/" in part or part.startswith(".") or "\\" in part:
            raise InvalidInput(f"{label} {part!r} must be a plain file name")
    frame = (
        normalize(records, schema)
        if isinstance(records, pd.DataFrame)
        else to_frame(records, schema)
    )
    day = day or datetime.now(UTC).date()
    directory = Path(root) / dataset / day.isoformat()
    written: list[ExportedFile] = []
    try:
        for fmt in dict.fromkeys(formats):
            data = render(frame, schema, fmt)
            path = directory / f"{run_id}.{fmt}"
            atomic_write_bytes(path, data)
            digest = hashlib.sha256(data).hexdigest()
            written.append(
                ExportedFile(format=fmt, path=path, rows=len(frame), bytes=len(data), sha256=digest)
            )
        manifest = directory / MANIFEST
        JsonStore(manifest, dict).update(
            lambda m: _add_to_manifest(m, dataset, run_id, schema, written)
        )
    except BaseException:
        for f in written:
            f.path.unlink(missing_ok=True)
        raise
    return ExportResult(
        dataset=dataset,
        run_id=run_id,
        directory=directory,
        rows=len(frame),
        files=written,
        manifest=manifest,
    )


def _add_to_manifest(
    manifest: dict[str, Any],
    dataset: str,
    run_id: str,
    schema: Schema,
    files: list[ExportedFile],
) -> None:
    manifest.setdefault("dataset", dataset)
    manifest.setdefault("runs", {})[run_id] = {
        "created_at": datetime.now(UTC).isoformat(),
        "schema": {name: str(kind) for name, kind in schema.items()},
        "rows": files[0].rows if files else 0,
        "files": {
            f.format: {"file": f.path.name, "bytes": f.bytes, "sha256": f.sha256} for f in files
        },
    }


def read_export(path: Path | str) -> pd.DataFrame:
    """Read one exported file back, typed by the schema in its folder's manifest."""
    path = Path(path)
    manifest = JsonStore(path.parent / MANIFEST, dict).read()
    run = manifest.get("runs", {}).get(path.stem)
    if run is None:
        raise InvalidInput(f"{path} is not listed in {path.parent / MANIFEST}")
    schema = {name: Column(kind) for name, kind in run["schema"].items()}
    return parse(path.read_bytes(), schema, path.suffix.lstrip("."))  # type: ignore[arg-type]
