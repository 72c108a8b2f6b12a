"""The one dataset exporter: records -> pandas -> JSON, JSONL, CSV, Parquet.

Each dataset in each format is one folder of data files, partitioned by day the way pyarrow,
pandas and DuckDB read hive-style partitions:

    <root>/<format>/<dataset>/date=YYYY-MM-DD/<run_id>.<format>     data files only
    <root>/_manifests/<dataset>/date=YYYY-MM-DD/<run_id>.json        one manifest per run
    <root>/_staging/                                                 in-flight writes

so `pandas.read_parquet("<root>/parquet/<dataset>")` reads every run as one table. Every run of
a dataset has the same columns and types (the dataset's schema, applied explicitly), and the
partition column `date` is reserved. A run's files are rendered and written to `_staging` first,
then renamed into their folders, and its manifest (schema, rows, sha256 per file) is written last:
if any format fails, nothing of the run is left in a data folder. Every format reads back
(`read_export`) to the same DataFrame, dtypes included. No known secret value reaches a file
(`without_secrets`), and files get the mode the umask gives, so other users can read them.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from tasks import metrics
from tasks.errors import InvalidInput
from tasks.export_models import ExportedFile, ExportResult, Format
from tasks.redaction import known_secrets, redact_values
from tasks.store import atomic_write_bytes, open_temp_file

ALL_FORMATS: tuple[Format, ...] = ("json", "jsonl", "csv", "parquet")
PARTITION = "date"  # the hive partition key; no dataset may have a column of that name
MANIFESTS = "_manifests"
STAGING = "_staging"


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


def _as_schema(schema: Schema | type[BaseModel]) -> Schema:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        schema = schema_of(schema)
    if PARTITION in schema:
        raise InvalidInput(
            f"column {PARTITION!r} is reserved for the date partition of every dataset; "
            "rename it (e.g. 'day' or 'created_on')"
        )
    return {name: Column(kind) for name, kind in schema.items()}


def arrow_schema(schema: Schema) -> pa.Schema:
    """The explicit Arrow schema every Parquet file of a dataset is written with."""
    return pa.schema([(name, _ARROW[kind]) for name, kind in schema.items()])


def dataset_folder(root: Path | str, dataset: str, fmt: Format) -> Path:
    """The folder holding every run of `dataset` in format `fmt` (read it as one table)."""
    return Path(root) / fmt / dataset


def partition_folder(root: Path | str, dataset: str, fmt: Format, day: date) -> Path:
    return dataset_folder(root, dataset, fmt) / f"{PARTITION}={day.isoformat()}"


def manifest_path(root: Path | str, dataset: str, day: date, run_id: str) -> Path:
    return Path(root) / MANIFESTS / dataset / f"{PARTITION}={day.isoformat()}" / f"{run_id}.json"


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
        table = pa.Table.from_pandas(
            _flat_frame(frame, schema), schema=arrow_schema(schema), preserve_index=False
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
    schema: Schema | type[BaseModel],
    formats: Sequence[Format] = ALL_FORMATS,
    root: Path | str = Path("exports"),
    day: date | None = None,
) -> ExportResult:
    """Write `records` as `dataset` for `run_id` in every format of `formats`, into the day's
    partition of each format's dataset folder; the run's manifest is written last."""
    unknown = [f for f in formats if f not in ALL_FORMATS]
    if unknown or not formats:
        raise InvalidInput(f"export formats {unknown or '[]'} invalid; choose from {ALL_FORMATS}")
    for part, label in ((dataset, "dataset"), (run_id, "run_id")):
        if not part or "/" in part or part.startswith((".", "_")) or "\\" in part:
            raise InvalidInput(f"{label} {part!r} must be a plain file name")
    schema = _as_schema(schema)
    frame = (
        normalize(records, schema)
        if isinstance(records, pd.DataFrame)
        else to_frame(records, schema)
    )
    frame = without_secrets(frame, schema)
    root = Path(root)
    day = day or datetime.now(UTC).date()
    rendered = {fmt: render(frame, schema, fmt) for fmt in dict.fromkeys(formats)}
    files = _publish(root, dataset, run_id, day, rendered, len(frame))
    manifest = manifest_path(root, dataset, day, run_id)
    try:
        atomic_write_bytes(manifest, _manifest(dataset, run_id, day, schema, files, root))
    except BaseException:
        for f in files:
            f.path.unlink(missing_ok=True)
        raise
    for f in files:
        metrics.export_rows.add(f.rows, {"dataset": dataset, "format": f.format})
    return ExportResult(
        dataset=dataset,
        run_id=run_id,
        day=day,
        directory=root,
        datasets={f.format: dataset_folder(root, dataset, f.format) for f in files},
        rows=len(frame),
        files=files,
        manifest=manifest,
    )


def _publish(
    root: Path, dataset: str, run_id: str, day: date, rendered: dict[Format, bytes], rows: int
) -> list[ExportedFile]:
    """Stage every file outside the data folders (fsynced), then rename each into place; on any
    failure remove what was staged or placed, so readers never see part of a run."""
    staging = root / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    staged: dict[Format, str] = {}
    placed: list[ExportedFile] = []
    try:
        for fmt, data in rendered.items():
            fd, tmp = open_temp_file(staging / f"{dataset}.{run_id}.{fmt}")  # umask's mode
            staged[fmt] = tmp
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for fmt, data in rendered.items():
            path = partition_folder(root, dataset, fmt, day) / f"{run_id}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged[fmt], path)
            del staged[fmt]
            _fsync_dir(path.parent)
            digest = hashlib.sha256(data).hexdigest()
            placed.append(
                ExportedFile(format=fmt, path=path, rows=rows, bytes=len(data), sha256=digest)
            )
    except BaseException:
        for tmp in staged.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        for f in placed:
            f.path.unlink(missing_ok=True)
        raise
    return placed


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _manifest(
    dataset: str,
    run_id: str,
    day: date,
    schema: Schema,
    files: list[ExportedFile],
    root: Path,
) -> bytes:
    manifest = {
        "dataset": dataset,
        "run_id": run_id,
        PARTITION: day.isoformat(),
        "created_at": datetime.now(UTC).isoformat(),
        "schema": {name: str(kind) for name, kind in schema.items()},
        "rows": files[0].rows if files else 0,
        "files": {
            f.format: {
                "file": f.path.relative_to(root).as_posix(),
                "bytes": f.bytes,
                "sha256": f.sha256,
            }
            for f in files
        },
    }
    return json.dumps(manifest, indent=2).encode()


def _locate(path: Path) -> tuple[Path, str, date, str]:
    """(root, dataset, day, run_id) of a data file laid out by `export_dataset`."""
    partition, dataset_dir = path.parent, path.parent.parent
    key, _, value = partition.name.partition("=")
    if key != PARTITION or dataset_dir.parent.name != path.suffix.lstrip("."):
        raise InvalidInput(
            f"{path} is not an exported data file (<root>/<format>/<dataset>/date=…/<run>.<format>)"
        )
    return dataset_dir.parent.parent, dataset_dir.name, date.fromisoformat(value), path.stem


def read_manifest(path: Path | str) -> dict[str, Any]:
    """The manifest of the run that wrote the data file `path`."""
    root, dataset, day, run_id = _locate(Path(path))
    manifest = manifest_path(root, dataset, day, run_id)
    try:
        return json.loads(manifest.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"{path} has no manifest at {manifest}") from None


def read_export(path: Path | str) -> pd.DataFrame:
    """Read one exported file back, typed by the schema in its run's manifest."""
    path = Path(path)
    schema = {name: Column(kind) for name, kind in read_manifest(path)["schema"].items()}
    return parse(path.read_bytes(), schema, path.suffix.lstrip("."))  # type: ignore[arg-type]
