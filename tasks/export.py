"""The one dataset exporter: records -> pandas -> JSON, JSONL, CSV, Parquet (and Delta Lake).
The schema (`tasks/export_schema.py`) and the formats' bytes (`tasks/export_formats.py`) are
its two halves; this module lays the files out, writes and commits them, and reads them back.

Each dataset in each format is one folder of data files, partitioned by day the way pyarrow,
pandas and DuckDB read hive-style partitions, under one storage root, a local folder or an
object-store URI such as `s3://bucket/prefix` (tasks/storage.py):

    <root>/<format>/<dataset>/date=YYYY-MM-DD/<run_id>.<format>     data files only
    <root>/delta/<dataset>/                                          one Delta table (on request)
    <root>/_manifests/<dataset>/date=YYYY-MM-DD/<run_id>.json        one manifest per run

so `pandas.read_parquet("<root>/parquet/<dataset>")` reads every run as one table. Every run of
a dataset has the same columns and types (the dataset's schema, applied explicitly), and the
partition column `date` is reserved. An object store has no rename: each data file goes to its
final key in one write (a PUT, atomic per object; locally a temp file renamed into place), the
Delta rows in one commit carrying the run id, and the manifest (schema, rows, sha256 per file)
last, created only if absent (`If-None-Match: *`): it is the run's commit marker. A run whose
data did not land has no manifest; a resumed run rewrites the same keys and never appends its
Delta rows twice. Every format reads back (`read_export`) to the same DataFrame, dtypes
included. No known secret value reaches a file (`without_secrets`), and local files get the
mode the umask gives, so other users can read them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from tasks import metrics
from tasks.errors import InvalidInput
from tasks.export_formats import (
    ALL_FORMATS,
    arrow_schema,
    flat_frame,
    normalize,
    parse,
    render,
    to_frame,
    without_secrets,
)
from tasks.export_models import ExportedFile, ExportResult, Format
from tasks.export_schema import PARTITION, Column, Schema, as_schema, schema_of
from tasks.storage import (
    Location,
    Storage,
    as_root,
    join,
    open_storage,
    storage_for,
)

__all__ = [  # what callers import from here: the schema and formats re-exported with the writer
    "ALL_FORMATS",
    "FORMATS",
    "PARTITION",
    "Column",
    "Schema",
    "arrow_schema",
    "dataset_folder",
    "export_dataset",
    "normalize",
    "parse",
    "read_export",
    "read_manifest",
    "render",
    "schema_of",
]

FORMATS: tuple[Format, ...] = (*ALL_FORMATS, "delta")  # every format, Delta Lake on request
MANIFESTS = "_manifests"


def dataset_folder(root: Location, dataset: str, fmt: Format) -> Location:
    """The folder holding every run of `dataset` in format `fmt` (read it as one table)."""
    return join(root, fmt, dataset)


def partition_folder(root: Location, dataset: str, fmt: Format, day: date) -> Location:
    return join(root, fmt, dataset, f"{PARTITION}={day.isoformat()}")


def data_path(root: Location, dataset: str, fmt: Format, day: date, run_id: str) -> Location:
    return join(root, fmt, dataset, f"{PARTITION}={day.isoformat()}", f"{run_id}.{fmt}")


def manifest_path(root: Location, dataset: str, day: date, run_id: str) -> Location:
    return join(root, MANIFESTS, dataset, f"{PARTITION}={day.isoformat()}", f"{run_id}.json")


def export_dataset(
    records: Iterable[Mapping[str, Any] | BaseModel] | pd.DataFrame,
    dataset: str,
    run_id: str,
    row_model: type[BaseModel],
    formats: Sequence[Format] = ALL_FORMATS,
    root: Location = Path("exports"),
    day: date | None = None,
) -> ExportResult:
    """Write `records` as `dataset` for `run_id` in every format of `formats`, typed by the
    dataset's `row_model` (its columns and types through `schema_of`), into the day's
    partition of each format's dataset folder under `root` (a path or an object-store URI);
    the run's manifest is created last, only if it does not exist yet: it is the commit marker.
    A run whose manifest exists is not written again (a resumed run); one whose manifest is
    missing rewrites the same keys."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InvalidInput(f"export formats {unknown or '[]'} invalid; choose from {FORMATS}")
    for part, label in ((dataset, "dataset"), (run_id, "run_id")):
        if not part or "/" in part or part.startswith((".", "_")) or "\\" in part:
            raise InvalidInput(f"{label} {part!r} must be a plain file name")
    schema = as_schema(row_model)
    storage = open_storage(root)
    day = day or datetime.now(UTC).date()
    manifest = manifest_path(storage.root, dataset, day, run_id)
    if storage.exists(manifest):  # committed by an earlier attempt of this run
        return _committed(storage, manifest)
    frame = (
        normalize(records, schema)
        if isinstance(records, pd.DataFrame)
        else to_frame(records, schema)
    )
    frame = without_secrets(frame, schema)
    wanted = list(dict.fromkeys(formats))
    rendered = {fmt: render(frame, schema, fmt) for fmt in wanted if fmt != "delta"}
    files = _publish(storage, dataset, run_id, day, rendered, len(frame))
    try:
        if "delta" in wanted:
            files.append(_append_delta(storage, frame, schema, dataset, run_id, day))
        body = _manifest(dataset, run_id, day, schema, files, storage)
        if not storage.create(manifest, body):  # another attempt of this run committed first
            return _committed(storage, manifest)
    except BaseException:
        _remove(storage, [f for f in files if f.format != "delta"])
        raise
    for f in files:
        metrics.export_rows.add(f.rows, {"dataset": dataset, "format": f.format})
    return ExportResult(
        dataset=dataset,
        run_id=run_id,
        day=day,
        directory=storage.root,
        datasets={f.format: dataset_folder(storage.root, dataset, f.format) for f in files},
        rows=len(frame),
        files=files,
        manifest=manifest,
    )


def _publish(
    storage: Storage,
    dataset: str,
    run_id: str,
    day: date,
    rendered: dict[Format, bytes],
    rows: int,
) -> list[ExportedFile]:
    """Each data file to its final key in one write (a PUT; locally a rename), so a reader sees
    a whole file or none; on a failure the files already placed are removed (best effort on an
    object store that stopped answering: without a manifest the run is not committed)."""
    placed = [
        ExportedFile(
            format=fmt,
            path=data_path(storage.root, dataset, fmt, day, run_id),
            rows=rows,
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        for fmt, data in rendered.items()
    ]
    try:  # concurrent PUTs on an object store, each still one whole object
        storage.put_many({f.path: rendered[f.format] for f in placed})
    except BaseException:
        _remove(storage, placed)
        raise
    return placed


def _remove(storage: Storage, files: list[ExportedFile]) -> None:
    for f in files:
        with contextlib.suppress(Exception):
            storage.delete(f.path)


def delta_app_id(dataset: str, run_id: str) -> str:
    """The Delta app transaction id that marks `run_id`'s rows as appended to `dataset`."""
    return f"reactor-export/{dataset}/{run_id}"


def _append_delta(
    storage: Storage, frame: pd.DataFrame, schema: Schema, dataset: str, run_id: str, day: date
) -> ExportedFile:
    """Append the run's rows to `<root>/delta/<dataset>` in one commit carrying an app
    transaction for the run; a run whose transaction is in the log already is not appended
    again (a resumed run). delta-rs commits with conditional writes, so several hosts append
    to one table at once without a lock service."""
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
    from deltalake.exceptions import TableNotFoundError

    table_uri = str(dataset_folder(storage.root, dataset, "delta"))
    options = storage.storage_options()
    app_id = delta_app_id(dataset, run_id)
    with storage.errors(table_uri):
        try:
            table = DeltaTable(table_uri, storage_options=options)
            done = table.transaction_version(app_id)
        except TableNotFoundError:
            done = None
        if done is None:
            arrow = pa.Table.from_pandas(
                flat_frame(frame, schema), schema=arrow_schema(schema), preserve_index=False
            )
            arrow = arrow.append_column(
                PARTITION, pa.array([day.isoformat()] * len(arrow), pa.string())
            )
            write_deltalake(
                table_uri,
                arrow,
                mode="append",
                partition_by=[PARTITION],
                storage_options=options,
                commit_properties=CommitProperties(
                    app_transactions=[Transaction(app_id=app_id, version=1)],
                    custom_metadata={"reactor.run_id": run_id, "reactor.dataset": dataset},
                ),
            )
        version = DeltaTable(table_uri, storage_options=options).version()
    return ExportedFile(
        format="delta", path=table_uri, rows=len(frame), bytes=0, sha256=None, version=version
    )


def _manifest(
    dataset: str,
    run_id: str,
    day: date,
    schema: Schema,
    files: list[ExportedFile],
    storage: Storage,
) -> bytes:
    entries: dict[str, dict[str, Any]] = {}
    for f in files:
        entry: dict[str, Any] = {"file": storage.relative(f.path)}
        if f.format == "delta":
            entry.update(version=f.version, app_id=delta_app_id(dataset, run_id))
        else:
            entry.update(bytes=f.bytes, sha256=f.sha256)
        entries[f.format] = entry
    manifest = {
        "dataset": dataset,
        "run_id": run_id,
        PARTITION: day.isoformat(),
        "created_at": datetime.now(UTC).isoformat(),
        "schema": {name: str(kind) for name, kind in schema.items()},
        "rows": files[0].rows if files else 0,
        "files": entries,
    }
    return json.dumps(manifest, indent=2).encode()


def _committed(storage: Storage, manifest: Location) -> ExportResult:
    """The result of a run whose manifest exists, read back from it."""
    body = json.loads(storage.read(manifest))
    files = [
        ExportedFile(
            format=fmt,
            path=storage.join(*entry["file"].split("/")),
            rows=body["rows"],
            bytes=entry.get("bytes", 0),
            sha256=entry.get("sha256"),
            version=entry.get("version"),
        )
        for fmt, entry in body["files"].items()
    ]
    dataset = body["dataset"]
    return ExportResult(
        dataset=dataset,
        run_id=body["run_id"],
        day=date.fromisoformat(body[PARTITION]),
        directory=storage.root,
        datasets={f.format: dataset_folder(storage.root, dataset, f.format) for f in files},
        rows=body["rows"],
        files=files,
        manifest=manifest,
    )


def _locate(path: Location) -> tuple[Location, str, date, str]:
    """(root, dataset, day, run_id) of a data file laid out by `export_dataset`."""
    text = path.as_posix() if isinstance(path, Path) else str(path)
    parts = text.rsplit("/", 4)
    if isinstance(path, Path) and len(parts) == 4:  # relative to the working directory
        parts = [".", *parts]
    if len(parts) < 5:
        raise InvalidInput(f"{path} is not an exported data file")
    root_text, fmt_dir, dataset, partition, name = parts
    stem, _, ext = name.rpartition(".")
    key, _, value = partition.partition("=")
    if key != PARTITION or fmt_dir != ext:
        raise InvalidInput(
            f"{path} is not an exported data file (<root>/<format>/<dataset>/date=…/<run>.<format>)"
        )
    root: Location = Path(root_text) if isinstance(path, Path) else root_text
    return root, dataset, date.fromisoformat(value), stem


def read_manifest(path: Location) -> dict[str, Any]:
    """The manifest of the run that wrote the data file `path`."""
    path = as_root(path)
    root, dataset, day, run_id = _locate(path)
    manifest = manifest_path(root, dataset, day, run_id)
    storage = storage_for(path)
    try:
        return json.loads(storage.read(manifest))
    except FileNotFoundError:
        raise InvalidInput(f"{path} has no manifest at {manifest}") from None


def read_export(path: Location) -> pd.DataFrame:
    """Read one exported file back, typed by the schema in its run's manifest."""
    path = as_root(path)
    schema = {name: Column(kind) for name, kind in read_manifest(path)["schema"].items()}
    fmt = str(path).rpartition(".")[2]
    return parse(storage_for(path).read(path), schema, fmt)  # type: ignore[arg-type]
