"""The web app through its HTTP interface: real uploads, refusals with the right 4xx and a reason,
no way out of the index's files, search errors that name the problem, and `faceattr serve`."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app as cli
from faceattr.inference.predictor import Predictor
from faceattr.inference.values import CategoricalValue, NumericValue
from faceattr.server import ServerSettings, create_app


def png_bytes(size: tuple[int, int] = (120, 160)) -> bytes:
    """A faceless grey PNG."""
    out = io.BytesIO()
    Image.new("RGB", size, (128, 140, 150)).save(out, format="PNG")
    return out.getvalue()


def test_a_real_photo_gives_its_face_with_the_models_probabilities(
    client: TestClient, photos: list[Path], predictor: Predictor
) -> None:
    response = client.post("/predict", files={"file": ("face.jpg", photos[0].read_bytes())})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["width"], result["height"]) == (178, 218)
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    box = face["box"]
    assert 0 <= box["x"] < box["x"] + box["width"] <= 178 + 5
    assert 0 <= box["y"] < box["y"] + box["height"] <= 218 + 5
    assert len(face["landmarks"]) == 5
    assert [a["name"] for a in face["attributes"]] == list(predictor.attributes)
    expected = predictor.predict(photos[0])[0].probabilities
    served = np.array([a["probability"] for a in face["attributes"]])
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert all(a["present"] == (a["probability"] >= a["threshold"]) for a in face["attributes"])


def test_a_photo_without_a_face_gives_no_faces(client: TestClient) -> None:
    response = client.post("/predict", files={"file": ("blank.png", png_bytes(), "image/png")})
    assert response.status_code == 200
    assert response.json() == {"width": 120, "height": 160, "faces": []}


def test_numeric_and_categorical_attributes_are_served_with_their_units_and_classes(
    kinds_app: FastAPI, kinds_model: Path, photos: list[Path]
) -> None:
    client = TestClient(kinds_app)
    response = client.post("/predict", files={"file": ("face.jpg", photos[0].read_bytes())})
    assert response.status_code == 200, response.text
    [face] = response.json()["faces"]
    [expected] = Predictor.from_checkpoint(kinds_model, device="cpu").predict(photos[0])
    values = expected.values()
    age, hair = values["age"], values["hair"]
    assert isinstance(age, NumericValue) and isinstance(hair, CategoricalValue)
    binary = face["attributes"]
    assert [(a["name"], a["threshold"]) for a in binary] == [
        ("Male", pytest.approx(0.3)),
        ("Smiling", pytest.approx(0.7)),
    ]
    np.testing.assert_allclose([a["probability"] for a in binary], expected.probabilities)
    assert face["numeric"] == [
        {"name": "age", "value": pytest.approx(age.value, abs=1e-6), "unit": "years"}
    ]
    [served] = face["categorical"]
    assert (served["name"], served["label"]) == ("hair", hair.label)
    assert served["probability"] == pytest.approx(hair.probability, abs=1e-6)
    assert served["probabilities"] == pytest.approx(hair.probabilities, abs=1e-6)
    assert list(served["probabilities"]) == ["black", "blond", "brown", "gray"]
    health = client.get("/health").json()
    assert health["model"]["attributes"] == ["Male", "hair", "age", "Smiling"]
    for data, content_type, status in [(b"text", "text/plain", 415), (b"", "image/jpeg", 400)]:
        refused = client.post("/predict", files={"file": ("x", data, content_type)})
        assert refused.status_code == status, refused.text


def test_a_binary_model_serves_no_numeric_or_categorical_values(
    client: TestClient, photos: list[Path]
) -> None:
    response = client.post("/predict", files={"file": ("face.jpg", photos[1].read_bytes())})
    [face] = response.json()["faces"]
    assert face["numeric"] == face["categorical"] == [] and len(face["attributes"]) == 40


def chunks(data: bytes, size: int = 16_384) -> Iterator[bytes]:
    """``data`` in pieces: the client streams them without a Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def multipart(data: bytes, boundary: str = "b0undary") -> tuple[bytes, dict[str, str]]:
    """A hand-made multipart body with one ``file`` part, and its headers."""
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status", "message"),
    [
        ("notes.txt", b"hello, I am text", "text/plain", 415, "unsupported upload type text/plain"),
        ("fake.jpg", b"hello, I am text", "image/jpeg", 415, "not a readable image"),
        ("cut.png", png_bytes()[:60], "image/png", 415, "not a readable image"),
        ("empty.jpg", b"", "image/jpeg", 400, "empty upload"),
    ],
)
def test_bad_uploads_get_the_right_4xx_and_a_reason(
    client: TestClient, name: str, data: bytes, content_type: str, status: int, message: str
) -> None:
    response = client.post("/predict", files={"file": (name, data, content_type)})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


@pytest.mark.parametrize("bomb", ["png_bomb", "hdr_bomb"])
def test_an_image_over_the_pixel_budget_gets_413_naming_it(
    client: TestClient, bomb: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(bomb)
    response = client.post("/predict", files={"file": (path.name, path.read_bytes(), "image/png")})
    assert response.status_code == 413, response.text
    assert "megapixels, over the budget of 50 (FACEATTR_MAX_PIXELS)" in response.json()["detail"]


@pytest.mark.parametrize("excess", [1, 100_000, 1_000_000])
def test_uploads_over_the_limit_get_413_naming_it(
    client: TestClient, upload_limit: int, excess: int
) -> None:
    data = b"\xff" * (upload_limit + excess)
    response = client.post("/predict", files={"file": ("big.jpg", data, "image/jpeg")})
    assert response.status_code == 413
    assert response.json()["detail"] == f"upload too large: the limit is {upload_limit:,} bytes"


def test_a_streamed_upload_is_cut_off_at_the_limit(client: TestClient, upload_limit: int) -> None:
    body, headers = multipart(b"\xff" * (upload_limit * 2))
    response = client.post("/predict", content=chunks(body), headers=headers)
    assert response.status_code == 413
    assert f"{upload_limit:,} bytes" in response.json()["detail"]


def test_an_upload_without_the_file_field_names_it(client: TestClient) -> None:
    response = client.post("/predict", files={"photo": ("a.png", png_bytes(), "image/png")})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "file"]


def test_indexed_faces_serve_their_photo_and_a_thumbnail(
    client: TestClient, photos: list[Path]
) -> None:
    hits = client.get("/search", params={"limit": 100}).json()["hits"]
    assert sorted(hit["file_name"] for hit in hits) == sorted(p.name for p in photos)
    hit = hits[0]
    image = client.get(hit["image_url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content == next(p for p in photos if p.name == hit["file_name"]).read_bytes()
    thumbnail = client.get(hit["thumbnail_url"])
    assert thumbnail.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumbnail.content)) as small:
        assert small.format == "JPEG"
        assert 16 <= max(small.size) <= ServerSettings().thumbnail_size


@pytest.mark.parametrize(
    "path",
    [
        "/faces/999999/image",
        "/faces/999999/thumbnail",
        "/faces/0/image",
        "/faces/-1/image",
        "/faces/1.5/image",
        "/faces/99999999999999999999999/image",
        "/faces/../../../etc/passwd",
        "/faces/..%2F..%2F..%2Fetc%2Fpasswd/image",
        "/faces/%2e%2e%2f%2e%2e%2fetc%2fpasswd/image",
        "/faces/%2e%2e/image",
        "/faces/1%2F..%2F..%2Fapp.py/image",
        "/faces/%252e%252e%252fetc%252fpasswd/image",
        "/static/../app.py",
        "/static/..%2Fapp.py",
        "/static/%2e%2e/%2e%2e/cli/serve.py",
        "/static/..%5c..%5capp.py",
    ],
)
def test_ids_that_are_no_indexed_face_and_traversal_attempts_reach_no_file(
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422), (path, response.status_code)
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()


def test_an_unknown_id_is_named(client: TestClient) -> None:
    response = client.get("/faces/999999/image")
    assert response.json() == {"detail": "no face 999999 in the index"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("Eyeglases and Male", "Eyeglases"),
        ("Male and and Smiling", "position"),
        ("Smiling > 2", "2"),
        ("(Male or Young", "position"),
        ("Male; DROP TABLE faces", ";"),
        ("not " * 47 + "Male", "nests at most 12 parentheses and 'not'"),
        (" or ".join(["Male"] * 128), "at most 64 attribute terms"),
        (" and ".join(["Male"] * 128), "at most 64 attribute terms"),
        ("(" * 329 + "Male" + ")" * 329, "nests at most 12 parentheses and 'not'"),
    ],
)
def test_bad_queries_get_400_naming_the_problem(
    client: TestClient, query: str, message: str
) -> None:
    response = client.get("/search", params={"q": query})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith("bad query: ")
    assert message in detail


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_prob": 1.5}, "min_prob"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"like": "face"}, "like"),
    ],
)
def test_out_of_range_parameters_get_422_naming_them(
    client: TestClient, params: dict[str, object], field: str
) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_search_ranks_matches_and_like_finds_the_face_itself(client: TestClient) -> None:
    everyone = client.get("/search", params={"q": "", "limit": 100}).json()["hits"]
    male = client.get("/search", params={"q": "Male", "min_prob": 0.3, "limit": 100}).json()
    assert male["query"] == "Male"
    scores = [hit["score"] for hit in male["hits"]]
    assert scores == sorted(scores, reverse=True)
    expected = {h["face_id"] for h in everyone if h["probabilities"]["Male"] >= 0.3}
    assert {hit["face_id"] for hit in male["hits"]} == expected
    target = everyone[-1]["face_id"]
    similar = client.get("/search", params={"like": target, "limit": 3}).json()["hits"]
    assert similar[0]["face_id"] == target
    assert similar[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert client.get("/search", params={"like": 999999}).status_code == 404


def test_health_names_the_model_and_counts_the_index(
    client: TestClient, photos: list[Path], upload_limit: int
) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["model"]["name"] == "facenet-mtl"
    assert health["model"]["device"] == "cpu"
    assert health["index"]["faces"] == health["index"]["files"] == len(photos)
    assert health["index"]["attributes"] == health["model"]["attributes"]
    assert health["max_upload_bytes"] == upload_limit


def test_without_model_or_index_the_routes_say_what_to_start_with() -> None:
    client = TestClient(create_app(None, None))
    predict = client.post("/predict", files={"file": ("a.png", png_bytes(), "image/png")})
    assert predict.status_code == 503
    assert "--model" in predict.json()["detail"]
    for path in ("/search?q=Male", "/faces/1/image", "/faces/1/thumbnail"):
        response = client.get(path)
        assert response.status_code == 503
        assert "--db" in response.json()["detail"]
    assert client.get("/health").json()["model"] is None
    assert client.get("/").status_code == 200


def test_the_page_and_its_script_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="photo"' in page.text
    assert 'src="/static/app.js"' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200
    assert "/predict" in script.text
    assert "/" not in client.app.openapi()["paths"]  # type: ignore[attr-defined]


async def stalled_upload(app: FastAPI) -> list[dict[str, Any]]:
    """What the app sends for a POST /predict whose body stops after its first chunk."""
    chunks = [{"type": "http.request", "body": b"--x\r\n", "more_body": True}]
    never = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await never.wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"5000")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return sent


def test_a_stalled_body_gets_408_after_the_body_timeout(predictor: Predictor) -> None:
    app = create_app(predictor, None, ServerSettings(body_timeout=1))
    started = time.monotonic()
    sent = asyncio.run(stalled_upload(app))
    assert 1 <= time.monotonic() - started < 5
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body == {"detail": "request body too slow: nothing received for 1 s"}


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="max_upload_bytes"):
        ServerSettings(max_upload_bytes=0)
    with pytest.raises(ValueError, match="body_timeout"):
        ServerSettings(body_timeout=0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "/no/such/run"], "/no/such/run"),
        (["--db", "/no/such/faces.db"], "/no/such/faces.db"),
    ],
)
def test_serve_refuses_a_missing_model_or_index(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["serve", *arguments])
    assert result.exit_code == 2
    assert message in result.output


def test_serve_without_options_serves_the_shipped_model(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    options: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: (served.append(app), options.update(kw)))
    result = CliRunner().invoke(cli, ["serve", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert options["host"] == "127.0.0.1" and options["timeout_keep_alive"] == 5
    health = TestClient(served[0]).get("/health").json()
    assert health["model"]["name"] == "mobilenetv2" and health["index"] is None
