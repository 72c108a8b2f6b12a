"""What an export returns: the dataset files of one run. Plain pydantic, apart from the exporter
(`tasks/export.py`, which loads pandas and pyarrow), so that a model naming an export (e.g. the
SPR results) is imported without them."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

Format = Literal["json", "jsonl", "csv", "parquet"]


class ExportedFile(BaseModel):
    format: Format
    path: Path
    rows: int
    bytes: int
    sha256: str


class ExportResult(BaseModel):
    dataset: str
    run_id: str
    day: date
    directory: Path  # the exports root
    # the folder to read per format: all runs of the dataset, e.g. <root>/parquet/<dataset>
    datasets: dict[Format, Path]
    rows: int
    files: list[ExportedFile]
    manifest: Path
