"""``faceattr predict [--model RUN] PATHS...``: the attributes of every face in photos.

A binary attribute is printed with its probability and the decision against the model's
threshold; a numeric one as its estimate in its unit (``age 31.4 years``); a categorical one as
its most probable class with that class's probability (``hair black (0.812)``; JSON also has every
class's probability). CSV and Parquet have one column per binary attribute (its probability), per
numeric attribute (its estimate), and two per categorical attribute: ``<name>``, the most probable
class, and ``<name>_p``, its probability.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

from faceattr.cli import ABSTAIN_HELP, MODEL_HELP, app
from faceattr.inference.values import BinaryValue, NumericValue

if TYPE_CHECKING:
    from faceattr.data.schema import Schema
    from faceattr.inference.predictor import FacePrediction, ImagePrediction, Predictor


class Format(str, Enum):
    """Output formats of ``faceattr predict``."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


def face_table(face: FacePrediction, number: int, show_all: bool) -> list[str]:
    """Lines of one face: its box, then per binary attribute its probability and yes, no or
    unsure against the model's threshold (the present and unsure ones only unless
    ``show_all``), per numeric attribute its estimate and unit, per categorical attribute its
    most probable class and that class's probability; in the model's order."""
    x, y, width, height = face.box
    lines = [
        f"  face {number}: box x={x:.0f} y={y:.0f} w={width:.0f} h={height:.0f} "
        f"(detection {face.detection_score:.2f})"
    ]
    rows = []
    for name, value in face.values().items():
        if not isinstance(value, BinaryValue):
            rows.append(f"    {name:<20} {value}")
        elif show_all or value.present or value.unsure:
            verdict = "unsure" if value.unsure else "yes" if value.present else "no"
            rows.append(
                f"    {name:<20} {value.probability:6.3f}  {verdict:<6}  "
                f"(threshold {value.threshold:.2f})"
            )
    return lines + (rows or ["    (no attribute at or above its threshold)"])


def image_table(result: ImagePrediction, show_all: bool) -> str:
    """The table of one image's faces (nothing for a skipped image)."""
    lines = [f"{result.path} ({result.width}x{result.height}): {len(result.faces)} face(s)"]
    for number, face in enumerate(result.faces, start=1):
        lines += face_table(face, number, show_all)
    return "\n".join(lines)


def attribute_columns(schema: Schema) -> list[str]:
    """The attribute columns of the CSV output: a binary attribute's probability, a numeric
    one's estimate, a categorical one's most probable class and its probability (``<name>_p``)."""
    columns: list[str] = []
    for attribute in schema.attributes:
        columns.append(attribute.name)
        if attribute.kind == "categorical":
            columns.append(f"{attribute.name}_p")
    return columns


def text_columns(schema: Schema) -> set[str]:
    """The columns of the CSV output that hold text, not numbers."""
    return {"path", "error", *(a.name for a in schema.attributes if a.kind == "categorical")}


def csv_header(schema: Schema) -> list[str]:
    """Columns of the CSV output: one row per face, or per skipped image with its error."""
    base = ["path", "width", "height", "face", "x", "y", "box_width", "box_height"]
    return [*base, "detection_score", "error", *attribute_columns(schema)]


def attribute_cells(face: FacePrediction) -> list[str]:
    """One face's cells of :func:`attribute_columns`."""
    cells: list[str] = []
    for value in face.values().values():
        if isinstance(value, BinaryValue):
            cells.append(f"{value.probability:.6f}")
        elif isinstance(value, NumericValue):
            cells.append(f"{value.value:.4f}")
        else:
            cells += [value.label, f"{value.probability:.6f}"]
    return cells


def csv_rows(result: ImagePrediction, column_count: int) -> Iterator[list[object]]:
    """The CSV rows of one image: a face per row (its :func:`attribute_cells`), or one row with
    the error and ``column_count`` empty attribute cells."""
    image = [result.path, result.width, result.height]
    if result.error is not None:
        yield [*image, "", "", "", "", "", "", result.error, *[""] * column_count]
    for number, face in enumerate(result.faces, start=1):
        box = [f"{v:.2f}" for v in face.box]
        yield [*image, number, *box, f"{face.detection_score:.4f}", "", *attribute_cells(face)]


def shard_path(out: Path, paths: Sequence[str], output_format: Format) -> Path:
    """The shard of one chunk of ``paths``, named after them (so a rerun finds it done)."""
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    return out / f"part-{digest}.{output_format.value}"


def write_shard(results: Sequence[ImagePrediction], path: Path, schema: Schema) -> None:
    """``results`` as one CSV or Parquet file of :func:`csv_header`'s columns (Parquet typed:
    numbers as float64, empty cells null), written to a temporary file and renamed."""
    header = csv_header(schema)
    count = len(attribute_columns(schema))
    rows = [row for result in results for row in csv_rows(result, count)]
    temporary = path.with_name(path.name + ".tmp")
    if path.suffix == ".csv":
        with temporary.open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        text = text_columns(schema)
        columns = {
            name: [
                row[i] if name in text else (None if row[i] == "" else float(str(row[i])))
                for row in rows
            ]
            for i, name in enumerate(header)
        }
        pq.write_table(pa.table(columns), temporary)
    os.replace(temporary, path)


def predict_shards(
    predictor: Predictor,
    files: Sequence[Path],
    out: Path,
    output_format: Format,
    address: str,
    batch_size: int,
    progress: bool,
) -> tuple[int, int]:
    """Predict ``files`` on the Ray cluster at ``address`` into one shard a chunk of
    ``batch_size`` files in ``out``, skipping chunks whose shard exists; (shards written,
    shards already there)."""
    from faceattr.retrieval.distributed import predict_on_ray
    from faceattr.retrieval.indexer import batched

    out.mkdir(parents=True, exist_ok=True)
    chunks = list(batched(sorted({str(path) for path in files}), batch_size))
    todo = [chunk for chunk in chunks if not shard_path(out, chunk, output_format).exists()]
    paths = [path for chunk in todo for path in chunk]
    for results in predict_on_ray(predictor, paths, address, batch_size, progress=progress):
        names = [str(result.path) for result in results]
        write_shard(results, shard_path(out, names, output_format), predictor.schema)
    return len(todo), len(chunks) - len(todo)


def write_results(
    results: Iterable[ImagePrediction],
    out: TextIO,
    output_format: Format,
    schema: Schema,
    show_all: bool,
) -> tuple[int, int, int]:
    """Stream ``results`` to ``out`` in ``output_format``, listing skipped images on stderr;
    returns (images, images read, faces)."""
    images = read = faces = 0
    writer = csv.writer(out) if output_format is Format.CSV else None
    count = len(attribute_columns(schema))
    if writer is not None:
        writer.writerow(csv_header(schema))
    if output_format is Format.JSON:
        out.write("[")
    for result in results:
        if images and output_format is Format.JSON:
            out.write(",")
        images += 1
        faces += len(result.faces)
        read += not (result.error or "").startswith("unreadable")
        if result.error is not None:
            typer.echo(f"skipped {result.path}: {result.error}", err=True)
        if writer is not None:
            writer.writerows(csv_rows(result, count))
        elif output_format is Format.JSON:
            out.write("\n" + json.dumps(result.to_dict()))
        elif result.faces:
            out.write(image_table(result, show_all) + "\n")
    if output_format is Format.JSON:
        out.write("\n]\n")
    return images, read, faces


@contextmanager
def output_stream(path: Path | None) -> Iterator[TextIO]:
    """``path`` opened for writing (UTF-8, CSV-safe newlines), or stdout when None."""
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as file:
        yield file


@app.command("predict")
def predict(
    paths: list[str] = typer.Argument(..., help="Image files, folders (recursive) or globs."),
    model: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
    output_format: Format = typer.Option(Format.TABLE, "--format", help="Output format."),
    out: Path | None = typer.Option(None, "--out", help="Write there instead of stdout."),
    show_all: bool = typer.Option(
        False, "--all", help="Table: every attribute, not only the present ones."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Faces per model batch."),
    workers: int = typer.Option(2, "--workers", min=0, help="Decoding/detection processes."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    abstain: float = typer.Option(0.0, "--abstain", min=0.0, max=0.49, help=ABSTAIN_HELP),
    ray_address: str | None = typer.Option(
        None,
        "--ray",
        help="Predict on a Ray cluster (auto, local, ray://HOST:10001) into --out DIR: one "
        "--format parquet or csv shard per --batch-size files; a rerun skips finished shards.",
    ),
) -> None:
    """The attributes of every face in PATHS. Unreadable images and images without a face are
    listed on stderr and skipped; the exit code is 1 only when no image could be read."""
    from faceattr.faces.images import expand_paths
    from faceattr.inference.predictor import Predictor
    from faceattr.retrieval.indexer import WorkerFailure

    sharded = (Format.CSV, Format.PARQUET)
    if ray_address is not None and (out is None or output_format not in sharded):
        typer.echo("error: --ray writes shards: give --out DIR and --format parquet|csv", err=True)
        raise typer.Exit(2)
    if ray_address is None and output_format is Format.PARQUET:
        typer.echo("error: --format parquet writes shards with --ray only", err=True)
        raise typer.Exit(2)
    try:
        files = expand_paths(paths)
        predictor = Predictor.from_checkpoint(model, device=device, abstain=abstain)
        if ray_address is not None and out is not None:
            written, done = predict_shards(
                predictor, files, out, output_format, ray_address, batch_size, progress
            )
            typer.echo(f"{out}: {written} shards written, {done} already there", err=True)
            return
    except ModuleNotFoundError as error:
        typer.echo(f"error: --ray needs {error.name}: pip install 'faceattr[ray]'", err=True)
        raise typer.Exit(2) from None
    except WorkerFailure as error:
        typer.echo(f"error: {error}; the shards written stay: run again to resume", err=True)
        raise typer.Exit(1) from None
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    results = predictor.predict_paths(files, batch_size, workers, progress)
    with output_stream(out) as stream:
        images, read, faces = write_results(
            results, stream, output_format, predictor.schema, show_all
        )
    typer.echo(f"{images} images, {read} read, {faces} faces", err=True)
    if read == 0:
        raise typer.Exit(1)
