"""`faceattr serve [--model RUN] [--db faces.db]`: the web page and the HTTP API, with uvicorn."""

from __future__ import annotations

from pathlib import Path

import typer

from faceattr.cli import ABSTAIN_HELP, MODEL_HELP, app

KEEP_ALIVE_SECONDS = 5
"""An idle connection is closed after this long between requests."""
MAX_HEADER_BYTES = 16 * 1024
"""Request line and headers larger than this are refused (400) before any body is read."""


@app.command("serve")
def serve(
    model: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
    db: str | None = typer.Option(
        None, "--db", help="An index made by `faceattr index`: faces.db or postgresql://..."
    ),
    ann: Path | None = typer.Option(
        None, "--ann", help="The index's FAISS file, if not the default (see `faceattr index`)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free one)."),
    max_upload_mb: float = typer.Option(
        10.0, "--max-upload-mb", min=0.01, help="Larger uploads are refused (413)."
    ),
    body_timeout: float = typer.Option(
        30.0, "--body-timeout", min=1.0, help="Seconds a request body may stall (then 408)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    abstain: float = typer.Option(0.0, "--abstain", min=0.0, max=0.49, help=ABSTAIN_HELP),
) -> None:
    """Serve the page (upload a photo, search the index) and the API: POST /predict,
    GET /search, GET /faces/{id}/image, GET /health; the OpenAPI spec at /openapi.json."""
    import uvicorn

    from faceattr.inference.predictor import Predictor
    from faceattr.retrieval.store import IndexStore
    from faceattr.server import ServerSettings, create_app

    settings = ServerSettings(
        max_upload_bytes=round(max_upload_mb * 2**20), body_timeout=body_timeout
    )
    try:
        predictor = Predictor.from_checkpoint(model, device, abstain=abstain)
        store = None if db is None else IndexStore.open(db, ann_path=ann)
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"faceattr: http://{host}:{port}/ (API docs at /docs; Ctrl+C stops)")
    try:
        uvicorn.run(
            create_app(predictor, store, settings),
            host=host,
            port=port,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        )
    finally:
        if store is not None:
            store.close()
