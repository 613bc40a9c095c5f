"""The faceattr web app: predict on uploaded photos, search an attribute index, serve its faces.

``create_app(predictor, store, settings)`` builds a FastAPI app over one shared
:class:`~faceattr.inference.predictor.Predictor` (``None``: /predict answers 503) and one
:class:`~faceattr.retrieval.store.IndexStore` (``None``: the search and face routes answer 503).
Endpoints are plain ``def`` functions, so FastAPI runs them in its threadpool; the predictor's
detector keeps per-call state, so predictions take turns on one lock. Image files are served only
when the index lists them: the routes take a face id, never a path.
"""

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceattr import __version__
from faceattr.faces.images import ImageDecodeError, PixelBudgetError, decode_photo
from faceattr.inference.predictor import DRAFT_SIDE, Predictor
from faceattr.retrieval.query import QueryError
from faceattr.retrieval.store import FaceRecord, IndexStore
from faceattr.server.schemas import (
    ErrorMessage,
    Health,
    IndexInfo,
    ModelInfo,
    PredictResponse,
    SearchResponse,
    face_of,
    hit_of,
)
from faceattr.server.thumbnails import face_thumbnail
from faceattr.server.timeouts import BodyTimeout

STATIC = Path(__file__).with_name("static")
MULTIPART_OVERHEAD = 64 * 1024
"""Bytes a multipart body may carry beyond the file (boundaries, headers, the file name)."""
MAX_ID = 2**63 - 1
"""The largest face id a database can hold (SQL BIGINT)."""
UPLOAD_TYPES = ("image/", "application/octet-stream")
"""Declared upload types worth decoding (browsers and curl send one of these for photos)."""
OVER_BUDGET = "image too large: "
"""How the refusal of an upload over the pixel budget begins (413, as for too many bytes)."""
NO_MODEL = "no model loaded: start the server with --model RUN to predict"
NO_INDEX = "no index open: start the server with --db faces.db to search"

FaceId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="a face id from /search")]


@dataclass(frozen=True)
class ServerSettings:
    """Limits of the app: upload size in bytes, results per search, thumbnail side in pixels,
    seconds a request body may stall."""

    max_upload_bytes: int = 10 * 2**20
    max_results: int = 100
    thumbnail_size: int = 160
    body_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_results", "thumbnail_size", "body_timeout"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def too_large(self) -> str:
        """The message refusing an upload over the limit."""
        size = self.max_upload_bytes
        limit = f"{size / 2**20:g} MB" if size >= 2**20 else f"{size:,} bytes"
        return f"upload too large: the limit is {limit}"


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries of the refusals a route can give (all ``{"detail": ...}``)."""
    return {code: {"model": ErrorMessage} for code in codes}


def read_upload(file: UploadFile, settings: ServerSettings) -> bytes:
    """The uploaded bytes; 415 for a declared non-image type, 413 over the limit, 400 if empty."""
    declared = (file.content_type or "").lower()
    if declared and not declared.startswith(UPLOAD_TYPES):
        raise HTTPException(415, f"unsupported upload type {declared}: send a photo (JPEG, PNG, …)")
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, settings.too_large)
    if not data:
        raise HTTPException(400, "empty upload: the file has no bytes")
    return data


def create_app(
    predictor: Predictor | None,
    store: IndexStore | None,
    settings: ServerSettings | None = None,
) -> FastAPI:
    """The web app over ``predictor`` and ``store`` (either may be None); see the module doc."""
    settings = settings or ServerSettings()
    lock = threading.Lock()
    app = FastAPI(
        title="faceattr",
        version=__version__,
        description="Facial attributes of uploaded photos, and search over an attribute index.",
    )

    body_limit = settings.max_upload_bytes + MULTIPART_OVERHEAD
    # Added before the middleware below, so it runs inside it: its 408 reaches the handlers.
    app.add_middleware(BodyTimeout, seconds=settings.body_timeout)

    @app.middleware("http")
    async def refuse_declared_large_bodies(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """413 before reading a body whose declared length is over the limit."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > body_limit:
            return JSONResponse({"detail": settings.too_large}, status_code=413)
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def refuse(request: Request, error: StarletteHTTPException) -> Response:
        """Every refusal as ``{"detail": ...}``; the framework's limit on streamed bodies (no
        declared length) names ours."""
        if error.status_code == 413 and not str(error.detail).startswith(OVER_BUDGET):
            return JSONResponse({"detail": settings.too_large}, status_code=413)
        return await http_exception_handler(request, error)

    def need_predictor() -> Predictor:
        if predictor is None:
            raise HTTPException(503, NO_MODEL)
        return predictor

    def need_store() -> IndexStore:
        if store is None:
            raise HTTPException(503, NO_INDEX)
        return store

    def indexed_face(face_id: int) -> FaceRecord:
        """The record of ``face_id`` whose file the index lists and the disk still has."""
        index = need_store()
        record = index.face(face_id)
        if record is None:
            raise HTTPException(404, f"no face {face_id} in the index")
        if not index.is_indexed_path(record.path) or not Path(record.path).is_file():
            raise HTTPException(404, f"the image of face {face_id} is no longer on disk")
        return record

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=errors(400, 413, 415, 503),
        max_body_size=body_limit,
    )
    def predict(
        file: Annotated[UploadFile, File(description="a photo: JPEG, PNG, WebP, TIFF, …")],
    ) -> PredictResponse:
        """Detect every face of the uploaded photo and classify its attributes (no face: [])."""
        model = need_predictor()
        data = read_upload(file, settings)
        try:
            image = decode_photo(data, DRAFT_SIDE)
        except PixelBudgetError as error:
            raise HTTPException(413, f"{OVER_BUDGET}{error}") from None
        except ImageDecodeError as error:
            raise HTTPException(415, f"not a readable image: {error}") from None
        with lock:
            faces = model.predict(image)
        return PredictResponse(
            width=image.width, height=image.height, faces=[face_of(f) for f in faces]
        )

    @app.get("/search", response_model=SearchResponse, responses=errors(400, 404, 503))
    def search(
        q: Annotated[
            str, Query(max_length=2000, description="e.g. `Eyeglasses and not Male` (empty: all)")
        ] = "",
        min_prob: Annotated[float, Query(ge=0, le=1, description="what NAME alone means")] = 0.5,
        limit: Annotated[int, Query(ge=1, le=settings.max_results)] = 20,
        like: Annotated[
            int | None, Query(ge=1, le=MAX_ID, description="rank by similarity to this face")
        ] = None,
    ) -> SearchResponse:
        """Faces of the index satisfying the query, best first."""
        index = need_store()
        embedding = None
        if like is not None:
            record = index.face(like)
            if record is None:
                raise HTTPException(404, f"no face {like} in the index")
            embedding = record.embedding
        try:
            hits = index.search(q, min_prob=min_prob, limit=limit, like=embedding)
        except QueryError as error:
            raise HTTPException(400, f"bad query: {error}") from None
        return SearchResponse(
            query=q, min_prob=min_prob, like=like, hits=[hit_of(hit) for hit in hits]
        )

    @app.get(
        "/faces/{face_id}/image",
        response_class=FileResponse,
        responses={200: {"content": {"image/*": {}}}, **errors(404, 503)},
    )
    def face_image(face_id: FaceId) -> FileResponse:
        """The indexed photo the face was found in."""
        return FileResponse(indexed_face(face_id).path)

    @app.get(
        "/faces/{face_id}/thumbnail",
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}, **errors(404, 503)},
    )
    def face_thumbnail_jpeg(face_id: FaceId) -> Response:
        """A small JPEG of the face, cut from its indexed photo."""
        record = indexed_face(face_id)
        try:
            image = decode_photo(record.path, DRAFT_SIDE)
        except ImageDecodeError as error:
            raise HTTPException(
                404, f"the image of face {face_id} is unreadable: {error}"
            ) from None
        (x, y, w, h), (across, down) = record.box, image.scale
        box = (x / across, y / down, w / across, h / down)
        jpeg = face_thumbnail(image.pixels, box, settings.thumbnail_size)
        return Response(jpeg, media_type="image/jpeg")

    @app.get("/health", response_model=Health)
    def health() -> Health:
        """What the server holds: its model, its index and the upload limit."""
        model = None
        if predictor is not None:
            model = ModelInfo(
                name=predictor.description.model_name,
                attributes=list(predictor.attributes),
                device=str(predictor.device),
            )
        index = None
        if store is not None:
            stats = store.stats()
            index = IndexInfo(
                files=stats.files,
                failed=stats.failed,
                faces=stats.faces,
                model_name=stats.model_name,
                attributes=list(store.attributes),
            )
        return Health(
            status="ok", model=model, index=index, max_upload_bytes=settings.max_upload_bytes
        )

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The web page."""
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
