"""``faceattr index PATHS [--model RUN] --db faces.db`` and ``faceattr search QUERY``: build an
attribute index of a photo collection and query it (seed 004's content-based retrieval)."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from faceattr.cli import MODEL_HELP, app

if TYPE_CHECKING:
    import numpy as np

    from faceattr.retrieval.indexer import IndexSummary
    from faceattr.retrieval.store import IndexStore, SearchHit

DB_HELP = "The index: a SQLite file, sqlite:///PATH or postgresql://USER@HOST:PORT/DB."
ANN_HELP = (
    "The FAISS index file of the embeddings (default: DB.faiss beside a SQLite file; for "
    "PostgreSQL, in $FACEATTR_CACHE/ann/)."
)
QUERY_HELP = (
    "Attributes combined with and, or, not and parentheses, each optionally with a threshold: "
    "'Eyeglasses and Wearing_Hat and not Male', 'Smiling>0.9 or (Bald and not Young)'; "
    "numeric attributes compare values ('age<30', 'age between 20 and 30'), categorical ones "
    "test the class ('race=Asian', \"race!='Middle Eastern'\"). Empty: every face."
)
RAY_HELP = (
    "Predict on a Ray cluster: auto (the running one, or $RAY_ADDRESS), local (start one here), "
    "ray://HOST:10001 or HOST:6379; one actor per GPU, else per CPU (pip install 'faceattr[ray]')."
)
SHOWN_FAILURES = 20


class SearchFormat(str, Enum):
    """Output formats of ``faceattr search``."""

    TABLE = "table"
    JSON = "json"


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit (code 2) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def summary_lines(summary: IndexSummary) -> list[str]:
    """The counts of a run, then the first failed files and their reasons."""
    lines = [
        f"added {summary.added}, skipped {summary.skipped} (unchanged), "
        f"failed {summary.failed}, faces {summary.faces}"
        + (f", removed {summary.removed} (gone from disk)" if summary.removed else "")
    ]
    lines += [f"failed {path}: {reason}" for path, reason in summary.failures[:SHOWN_FAILURES]]
    if summary.failed > SHOWN_FAILURES:
        lines.append(f"... and {summary.failed - SHOWN_FAILURES} more failed files")
    return lines


@app.command("index")
def index_command(
    paths: list[str] = typer.Argument(..., help="Image files, folders (recursive) or globs."),
    model: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
    db: str = typer.Option("faces.db", "--db", help=DB_HELP),
    devices: int = typer.Option(
        1, "--devices", min=1, help="Prediction processes: one per GPU, else CPU processes."
    ),
    batch_size: int = typer.Option(
        32, "--batch-size", min=1, help="Faces per model batch, files per transaction."
    ),
    workers: int = typer.Option(2, "--workers", min=0, help="Decoding/detection processes."),
    device: str = typer.Option("auto", "--device", help="With --devices 1: auto, cpu, cuda:1."),
    reindex: bool = typer.Option(
        False, "--reindex", help="Empty an index that another model built, then index."
    ),
    prune: bool = typer.Option(
        False, "--prune", help="Forget indexed files under the folders of PATHS that are gone."
    ),
    ann: Path | None = typer.Option(None, "--ann", help=ANN_HELP),
    ray_address: str | None = typer.Option(None, "--ray", help=RAY_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Add the faces of PATHS to the index: unchanged files are skipped, changed ones redone,
    unreadable and faceless files recorded and listed; --prune forgets deleted files."""
    from faceattr.faces.images import expand_paths
    from faceattr.inference.predictor import Predictor
    from faceattr.retrieval.indexer import WorkerFailure, index_paths
    from faceattr.retrieval.store import IndexStore
    from faceattr.shipped import model_path

    try:
        files = expand_paths(paths)
        source = model_path(model).resolve()
        predictor = Predictor.from_checkpoint(source, device=device)
        with IndexStore.open(db, create=True, ann_path=ann) as store:
            summary = index_paths(
                store,
                predictor,
                files,
                devices,
                batch_size,
                progress,
                reindex,
                workers,
                model_source=str(source),
                prune=[Path(p) for p in paths if Path(p).is_dir()] if prune else [],
                ray_address=ray_address,
            )
            stats = store.stats()
    except ModuleNotFoundError as error:
        raise fail(f"--ray needs {error.name}: pip install 'faceattr[ray]'") from None
    except WorkerFailure as error:
        raise fail(f"{error}; what was committed stays indexed: run again to resume") from None
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise fail(str(error)) from None
    for line in summary_lines(summary):
        typer.echo(line)
    typer.echo(f"{db}: {stats.files} files, {stats.faces} faces, model {stats.model_name}")


def like_embedding(store: IndexStore, image: Path, model: Path | None, device: str) -> np.ndarray:
    """The main-face embedding of ``image`` by the index's model (``model``, else the path the
    index recorded); ``ValueError`` when that model is not the index's or finds no face."""
    from faceattr.inference.predictor import Predictor
    from faceattr.retrieval.indexer import index_model

    if store.model is None:
        raise ValueError("the index is empty")
    source = model or (Path(store.model.source) if store.model.source else None)
    if source is None:
        raise ValueError("--like needs --model: the index does not record its model's path")
    predictor = Predictor.from_checkpoint(source, device=device)
    if index_model(predictor).fingerprint != store.model.fingerprint:
        raise ValueError(f"{source} is not the model that built the index ({store.model.name})")
    embedding = predictor.embed(image)
    if embedding is None:
        raise ValueError(f"no face found in {image}")
    return embedding


def hit_cell(hit: SearchHit, attribute: str) -> str:
    """``attribute`` of ``hit`` in 13 characters: its probability, its numeric value, or its
    class name (cut to 12) when categorical."""
    value = hit.values.get(attribute)
    if isinstance(value, str):
        return f"{value[:12]:>13}"
    if value is not None:
        return f"{value:13.2f}"
    return f"{hit.probabilities[attribute]:13.3f}"


def hits_table(hits: list[SearchHit], attributes: tuple[str, ...]) -> str:
    """One line per hit: rank, face id, score, the query's attributes (probability, value or
    class), box, path."""
    header = f"{'#':>3} {'face':>7} {'score':>7} " + "".join(f"{a[:12]:>13}" for a in attributes)
    lines = [header + "  box (x,y,w,h)        path"]
    for rank, hit in enumerate(hits, start=1):
        values = "".join(hit_cell(hit, a) for a in attributes)
        box = ",".join(f"{v:.0f}" for v in hit.box)
        lines.append(f"{rank:>3} {hit.face_id:>7} {hit.score:7.3f} {values}  {box:<19}  {hit.path}")
    return "\n".join(lines)


@app.command("search")
def search_command(
    query: str = typer.Argument("", help=QUERY_HELP),
    db: str = typer.Option("faces.db", "--db", help=DB_HELP),
    min_prob: float = typer.Option(
        0.5, "--min-prob", min=0.0, max=1.0, help="What a bare attribute means: P >= this."
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="Most faces shown."),
    like: Path | None = typer.Option(
        None, "--like", help="Rank the matches by similarity to this photo's main face."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="The index's model for --like (default: the path it recorded)."
    ),
    device: str = typer.Option("auto", "--device", help="Device of the --like model."),
    exact: bool = typer.Option(
        False, "--exact", help="With --like: rank every match exactly, without the FAISS index."
    ),
    ann: Path | None = typer.Option(None, "--ann", help=ANN_HELP),
    output_format: SearchFormat = typer.Option(SearchFormat.TABLE, "--format", help="Output."),
) -> None:
    """Faces of the index that satisfy QUERY, surest first (or most like --like)."""
    from faceattr.faces.images import ImageDecodeError
    from faceattr.retrieval.query import QueryError, parse_query
    from faceattr.retrieval.store import IndexStore

    try:
        with IndexStore.open(db, ann_path=ann) as store:
            parsed = parse_query(query, store.schema, min_prob)
            embedding = None if like is None else like_embedding(store, like, model, device)
            hits = store.search(parsed, limit=limit, like=embedding, exact=exact)
    except (FileNotFoundError, QueryError, ImageDecodeError, ValueError) as error:
        raise fail(str(error)) from None
    if output_format is SearchFormat.JSON:
        typer.echo(json.dumps([asdict(hit) for hit in hits], indent=2))
    elif hits:
        typer.echo(hits_table(hits, parsed.attributes))
    else:
        typer.echo("no face matches")
