"""`reactor spr`: SPR compression: compress, decompress, roundtrip, batch, validate, metrics.

Single files run the library directly (no Prefect server needed); `batch` runs the
`spr-pipeline` flow. `--json` prints the result as JSON on stdout and nothing else.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from reactor.commands._common import cli_errors, fail, needs_server, print_json

app = typer.Typer(
    help="SPR compression: compress, decompress, roundtrip, batch, validate, metrics.",
    no_args_is_help=True,
)

# One name per concept across the commands: a single file takes one `--format`, a batch several
# `--formats`; both take `--target-ratio` (`-r`) and `--compressor`.
FormatOpt = Annotated[
    str, typer.Option("--format", "-f", metavar="FORMAT", help="minimal | standard | extended")
]
RatioOpt = Annotated[
    float | None,
    typer.Option(
        "--target-ratio",
        "-r",
        metavar="RATIO",
        help="target word ratio in (0, 1] (default: the format's own)",
    ),
]
CompressorOpt = Annotated[str, typer.Option(metavar="NAME", help="extractive | claude | auto")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
FileArg = Annotated[Path, typer.Argument(metavar="FILE", show_default=False)]


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _compress_file(path: Path, fmt: str, ratio: float | None, compressor: str):
    from tasks.spr.files import read_document_file
    from tasks.spr.models import FORMATS

    # the input is checked before the compressor's imports (the Claude SDK among them)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {sorted(FORMATS)}")
    if compressor not in ("extractive", "claude", "auto"):
        raise ValueError(f"unknown compressor {compressor!r}; expected extractive|claude|auto")
    if ratio is not None and not 0 < ratio <= 1:
        raise ValueError(f"--target-ratio must be in (0, 1], got {ratio}")
    document = read_document_file(path)

    from tasks.spr.analyze import analyze
    from tasks.spr.llm import compress_with
    from tasks.spr.pipeline import decode

    text = decode(document)
    analysis = analyze(text)
    target = FORMATS[fmt].default_ratio if ratio is None else ratio
    result = compress_with(text, fmt, target, compressor, strategy=analysis.strategy)
    return text, analysis, result


def _source(result) -> str:
    """What compressed it: extractive, claude (model), or extractive (fallback: reason)."""
    if result.fallback_reason:
        return f"{result.source} (fallback: {result.fallback_reason})"
    return f"{result.source} ({result.model})" if result.model else result.source


def _trace_id(name: str) -> str:
    from tasks.telemetry import configure_telemetry, get_tracer
    from tasks.tracing import format_trace_id

    configure_telemetry()
    with get_tracer().start_as_current_span(name) as span:
        return format_trace_id(span.get_span_context().trace_id)


@app.command()
def compress(
    file: FileArg,
    fmt: FormatOpt = "standard",
    ratio: RatioOpt = None,
    compressor: CompressorOpt = "extractive",
    out: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="the .spr file to write (default FILE.FORMAT.spr)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compress FILE into a .spr file."""
    from tasks.spr.sprfile import render_spr
    from tasks.store import atomic_write_bytes

    with cli_errors():
        _, analysis, result = _compress_file(file, fmt, ratio, compressor)
        target = out or file.with_name(f"{file.name}.{fmt}.spr")
        atomic_write_bytes(
            target,
            render_spr(
                result.statements,
                original_words=result.original_words,
                target_ratio=result.target_ratio,
                format=fmt,
                trace_id=_trace_id("spr.compress"),
                document_id=file.name,
                compressor=result.source,
            ).encode(),
        )
    if as_json:
        print_json(
            {"spr_file": str(target), "analysis": analysis.model_dump(), **result.model_dump()}
        )
        return
    typer.echo(
        f"{target}: {len(result.statements)} statements, {result.compressed_words}/"
        f"{result.original_words} words (ratio {result.achieved_ratio:.3f}, target "
        f"{result.target_ratio:.3f}), {analysis.content_type}, {_source(result)}"
    )


@app.command()
def decompress(file: FileArg, as_json: JsonOpt = False) -> None:
    """Reassemble prose from FILE.spr."""
    from tasks.spr.decompress import decompress as to_prose
    from tasks.spr.sprfile import parse_spr

    with cli_errors():
        spr = parse_spr(_read(file), str(file))
        prose = to_prose(spr.spr_text)
    if as_json:
        print_json({"file": str(file), "text": prose})
    else:
        typer.echo(prose)


@app.command()
def roundtrip(
    file: FileArg,
    fmt: FormatOpt = "standard",
    ratio: RatioOpt = None,
    compressor: CompressorOpt = "extractive",
    as_json: JsonOpt = False,
) -> None:
    """Compress FILE, decompress it, and score the roundtrip quality."""
    from tasks.spr.llm import decompress_with
    from tasks.spr.quality import quality

    with cli_errors():
        text, analysis, result = _compress_file(file, fmt, ratio, compressor)
        mode = "extractive" if result.source == "extractive" else compressor
        prose, decompressor, decompression_fallback = decompress_with(result.spr_text, mode)
        report = quality(
            text, result.spr_text, decompressed=prose, penalise_unsupported=decompressor == "claude"
        )
    if as_json:
        print_json(
            {
                "analysis": analysis.model_dump(),
                "compression": result.model_dump(),
                "decompressor": decompressor,
                "decompression_fallback_reason": decompression_fallback,
                "decompressed": prose,
                "quality": report.model_dump(),
                "efficiency": round(report.quality * (1 - result.achieved_ratio), 4),
            }
        )
        return
    typer.echo(
        f"{file}: {analysis.content_type}, {result.original_words} words -> "
        f"{result.compressed_words} ({result.achieved_ratio:.3f}, target {result.target_ratio:.3f})"
    )
    for name, value in report.model_dump().items():
        typer.echo(f"  {name:<18} {value:.3f}")


@app.command()
@needs_server
def batch(
    directory: Annotated[Path, typer.Argument(metavar="DIRECTORY", show_default=False)],
    target_ratio: Annotated[
        float,
        typer.Option(
            "--target-ratio", "-r", metavar="RATIO", help="the standard format's word ratio, (0, 1]"
        ),
    ] = 0.15,
    formats: Annotated[
        list[str],
        typer.Option(
            "--formats",
            "-f",
            metavar="LIST",
            help="SPR formats, comma-separated (minimal, standard, extended)",
        ),
    ] = ["minimal,standard,extended"],  # noqa: B006
    export_formats: Annotated[
        list[str],
        typer.Option(
            metavar="LIST",
            help="dataset formats, comma-separated (json, jsonl, csv, parquet, delta)",
        ),
    ] = ["json,jsonl,csv,parquet"],  # noqa: B006
    out: Annotated[
        str,
        typer.Option(
            metavar="ROOT",
            help="dataset root, a path or s3://bucket/prefix: each dataset goes to "
            "ROOT/<format>/<dataset>/date=<day>/",
        ),
    ] = "exports",
    quality_threshold: Annotated[
        float, typer.Option(metavar="SCORE", help="a format below this quality is flagged, [0, 1]")
    ] = 0.65,
    compressor: CompressorOpt = "extractive",
    as_json: JsonOpt = False,
) -> None:
    """Run the spr-pipeline flow on every file in DIRECTORY."""
    from tasks.spr.files import document_files
    from tasks.spr.models import SPRRequest
    from tasks.storage import check_root

    with cli_errors():
        document_files(directory)  # a clear error now, before a flow run starts
        check_root(out)  # likewise for a bad scheme, a missing bucket, no endpoint, bad keys
        request = SPRRequest(
            paths=[directory.resolve()],
            target_ratio=target_ratio,
            formats=_split(formats),
            export_formats=_split(export_formats),
            quality_threshold=quality_threshold,
            compressor=compressor,
        )
        os.environ["REACTOR_EXPORTS_DIR"] = str(out)
        from flows.spr_pipeline import spr_pipeline

        result = asyncio.run(spr_pipeline(request))
    if as_json:
        print_json(result)
        return
    for doc in result.documents:
        if doc.error:
            typer.echo(f"{doc.document_id}: error: {doc.error}")
        for fr in doc.formats:
            typer.echo(
                f"{doc.document_id} [{fr.format}] ratio {fr.achieved_ratio:.3f} quality "
                f"{fr.quality.quality:.3f} {'passed' if fr.passed else 'below threshold'}"
            )
    typer.echo(
        f"{result.processed} processed, {result.failed} with errors; median quality "
        f"{result.median_quality}; exports in {result.export.directory if result.export else '-'}"
    )


@app.command()
def validate(file: FileArg, as_json: JsonOpt = False) -> None:
    """Check FILE.spr: header fields, word counts, ratio, format, trace id."""
    from tasks.spr.sprfile import parse_spr, validate_spr

    with cli_errors():
        problems = validate_spr(parse_spr(_read(file), str(file)))
    if as_json:
        print_json({"file": str(file), "valid": not problems, "problems": problems})
    elif not problems:
        typer.echo(f"{file}: valid")
    if problems:
        if not as_json:
            fail(f"{file}: " + "; ".join(problems), code=1)
        raise typer.Exit(1)


@app.command()
def metrics(
    file: FileArg,
    original: Annotated[
        Path | None, typer.Option(metavar="PATH", help="the original, to score quality")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Statement statistics of FILE.spr (and its quality against --original)."""
    from tasks.spr.files import read_document_file
    from tasks.spr.pipeline import decode
    from tasks.spr.quality import quality
    from tasks.spr.sprfile import parse_spr, statement_stats

    with cli_errors():
        spr = parse_spr(_read(file), str(file))
        values: dict = {
            "file": str(file),
            "format": spr.format,
            "original_words": spr.original_words,
            "ratio": spr.ratio,
            "target_ratio": spr.target_ratio,
            **statement_stats(spr),
        }
        if original is not None:
            report = quality(decode(read_document_file(original)), spr.spr_text)
            values["quality"] = report.model_dump()
            values["efficiency"] = round(report.quality * (1 - spr.ratio), 4)
    if as_json:
        print_json(values)
        return
    for key, value in values.items():
        typer.echo(f"{key:<26} {value}")


def _read(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a UTF-8 .spr file") from exc
