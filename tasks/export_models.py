"""What an export returns: the dataset files of one run. Plain pydantic, apart from the exporter
(`tasks/export.py`, which loads pandas and pyarrow), so that a model naming an export (e.g. the
SPR results) is imported without them."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel

from tasks.storage import StoredAt

Format = Literal["json", "jsonl", "csv", "parquet", "delta"]


class ExportedFile(BaseModel):
    format: Format
    path: StoredAt  # a local path, or the file's URI on an object store
    rows: int
    bytes: int  # 0 for a Delta table
    sha256: str | None = None  # None for a Delta table
    version: int | None = None  # the Delta table's version once the run's commit is in


class ExportResult(BaseModel):
    dataset: str
    run_id: str
    day: date
    directory: StoredAt  # the exports root
    # the folder to read per format: all runs of the dataset, e.g. <root>/parquet/<dataset>
    datasets: dict[Format, StoredAt]
    rows: int
    files: list[ExportedFile]
    manifest: StoredAt
