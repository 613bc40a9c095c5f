"""Latency and throughput of `faceattr serve` under a bounded load, on loopback.

    python benchmarks/serve_load.py                         # untrained facenet-mtl, astronaut photo
    python benchmarks/serve_load.py --model runs/RUN --db faces.db --photo me.jpg \\
        --requests 200 --clients 8

The server runs in its own process (uvicorn, as `faceattr serve` runs it) on a free loopback
port; ``--clients`` concurrent httpx.AsyncClient loops send ``--requests`` POST /predict uploads
of ``--photo`` (default: scikit-image's ``astronaut``, one face), then, with ``--db``, as many
GET /search requests cycling through a few queries over the index's attributes. For each
endpoint it prints the requests, errors (transport failures and non-2xx answers), p50/p95/max
latency and requests/s. Without ``--model`` an untrained facenet-mtl (seed 000's 36x36 network) is
exported to a temporary folder: the network's weights do not change the work a request does.

Then the worst cases, each as four concurrent uploads while the server's resident memory is
sampled (Linux ``/proc``): a 20 KB 1-bit PNG of 13,000 x 13,000 and a Radiance .hdr declaring
12,000 x 12,000 (both over the pixel budget: 413 before decoding), and a 1-bit PNG of 7,000 x
7,000 (49 megapixels, just under the budget: decoded). It prints the answers and the server's
memory before and at its peak.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import multiprocessing
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

SEARCHES = (
    "",
    "Male",
    "Smiling and not Male",
    "Eyeglasses or Wearing_Hat",
    "Young and Smiling>0.7",
)
STARTUP_SECONDS = 180.0
WORST_CASE_CLIENTS = 4
HDR_BOMB = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 12000 +X 12000\n" + bytes(4096)


@dataclass(frozen=True)
class LoadResult:
    """One endpoint's figures: latencies in seconds, errors, and the wall time of the run."""

    endpoint: str
    latencies: np.ndarray
    errors: int
    seconds: float

    def row(self) -> str:
        """A line of the report table."""
        p50, p95, worst = np.percentile(self.latencies * 1e3, [50, 95, 100])
        rate = len(self.latencies) / self.seconds
        return (
            f"{self.endpoint:<9} {len(self.latencies):>8} {self.errors:>6} {p50:>8.1f} "
            f"{p95:>8.1f} {worst:>8.1f} {rate:>8.1f}"
        )


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_server(model: str, db: str | None, port: int, device: str) -> None:
    """The server process: what `faceattr serve --model MODEL [--db DB]` runs."""
    import uvicorn

    from faceattr.inference.predictor import Predictor
    from faceattr.retrieval.store import IndexStore
    from faceattr.server import ServerSettings, create_app

    predictor = Predictor.from_checkpoint(model, device)
    store = None if db is None else IndexStore.open(db)
    app = create_app(predictor, store, ServerSettings())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def wait_until_up(base_url: str, server: BaseProcess) -> dict:
    """The server's /health once it answers (``RuntimeError`` if it dies or never answers)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise RuntimeError(f"the server exited with code {server.exitcode}")
        try:
            return httpx.get(f"{base_url}/health", timeout=5).raise_for_status().json()
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {STARTUP_SECONDS:.0f} s")


def untrained_model(folder: Path) -> Path:
    """An export of an untrained facenet-mtl in ``folder``."""
    from faceattr.models import create_model
    from faceattr.training.checkpoint import export_model

    return export_model(create_model("facenet-mtl"), folder / "facenet-mtl")


def astronaut_jpeg() -> bytes:
    """scikit-image's ``astronaut`` (512x512, one face) as JPEG bytes."""
    from skimage.data import astronaut

    out = io.BytesIO()
    Image.fromarray(astronaut()).save(out, format="JPEG", quality=90)
    return out.getvalue()


Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]
"""One request: ``send(client, i)`` for the ``i``-th request of a run."""


async def load(
    base_url: str,
    endpoint: str,
    send: Send,
    requests: int,
    clients: int,
) -> LoadResult:
    """``requests`` calls of ``send(client, i)`` spread over ``clients`` concurrent loops."""
    counter = itertools.count()
    latencies: list[float] = []
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while (i := next(counter)) < requests:
            started = time.perf_counter()
            try:
                response = await send(client, i)
                errors += not response.is_success
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        seconds = time.perf_counter() - started
    return LoadResult(endpoint, np.array(latencies), errors, seconds)


def searches(attributes: list[str]) -> tuple[str, ...]:
    """A few queries over the index's ``attributes``: all faces, one, and, or, thresholds."""
    a, b, c = (attributes * 3)[:3]
    return ("", a, f"{b} and not {a}", f"{a} or {c}", f"{a}>0.7 and {b}<0.3")


async def run_loads(
    base_url: str, photo: bytes, queries: tuple[str, ...], requests: int, clients: int
) -> list[LoadResult]:
    """The /predict load, then (with ``queries``) the /search load cycling through them."""

    def predict(client: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
        return client.post("/predict", files={"file": ("photo.jpg", photo)})

    def search(client: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
        return client.get("/search", params={"q": queries[i % len(queries)]})

    results = [await load(base_url, "/predict", predict, requests, clients)]
    if queries:
        results.append(await load(base_url, "/search", search, requests, clients))
    return results


def resident_mb(pid: int) -> float:
    """The resident memory of process ``pid`` in MB (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass(frozen=True)
class MemoryResult:
    """The server's memory around one worst case: answers, MB before and at the peak."""

    upload: str
    statuses: list[int]
    before_mb: float
    peak_mb: float

    def row(self) -> str:
        """A line of the worst-case table."""
        answers = ",".join(map(str, sorted(set(self.statuses))))
        grown = self.peak_mb - self.before_mb
        return (
            f"{self.upload:<28} {answers:>8} {self.before_mb:>10.0f} {self.peak_mb:>10.0f} "
            f"{grown:>+9.0f}"
        )


def worst_case_uploads() -> dict[str, bytes]:
    """The uploads that cost the most to refuse or to decode (see the module docstring)."""
    from faceattr.image_files import black_png

    return {
        "PNG 13000x13000 1-bit": black_png(13_000, 13_000),
        "HDR 12000x12000": HDR_BOMB,
        "PNG 7000x7000 (in budget)": black_png(7_000, 7_000),
    }


def measure_memory(base_url: str, pid: int, name: str, data: bytes) -> MemoryResult:
    """``WORST_CASE_CLIENTS`` concurrent uploads of ``data`` while the server's memory is
    sampled every 10 ms."""
    before = resident_mb(pid)
    samples = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(resident_mb(pid))
            time.sleep(0.01)

    async def upload_all() -> list[int]:
        async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
            responses = await asyncio.gather(
                *(
                    client.post("/predict", files={"file": (name, data)})
                    for _ in range(WORST_CASE_CLIENTS)
                )
            )
        return [response.status_code for response in responses]

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        statuses = asyncio.run(upload_all())
    finally:
        done.set()
        sampler.join()
    return MemoryResult(name, statuses, before, max(samples))


def main() -> None:
    """Start the server, load /predict (and /search with --db), print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a run folder, export folder, .ckpt or .onnx")
    parser.add_argument("--db", help="an index for the /search load (faces.db, postgresql://)")
    parser.add_argument("--photo", type=Path, help="the uploaded photo (default: astronaut)")
    parser.add_argument("--requests", type=int, default=200, help="per endpoint")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    photo = args.photo.read_bytes() if args.photo else astronaut_jpeg()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(untrained_model(Path(tmp)))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = multiprocessing.get_context("spawn").Process(
            target=run_server, args=(model, args.db, port, args.device)
        )
        server.start()
        try:
            health = wait_until_up(base_url, server)
            index = health["index"]
            queries = searches(index["attributes"]) if index and index["attributes"] else ()
            loads = run_loads(base_url, photo, queries, args.requests, args.clients)
            results = asyncio.run(loads)
            assert server.pid is not None
            memory = [
                measure_memory(base_url, server.pid, name, data)
                for name, data in worst_case_uploads().items()
            ]
        finally:
            server.terminate()
            server.join()
    served = health["model"]
    print(
        f"model {served['name']} on {served['device']}; photo {len(photo):,} bytes; "
        f"{args.clients} concurrent clients, {args.requests} requests per endpoint"
        + (f"; index of {index['faces']} faces" if index else "")
    )
    header = ("endpoint", "requests", "errors", "p50 ms", "p95 ms", "max ms", "req/s")
    print(f"{header[0]:<9} " + " ".join(f"{h:>8}" for h in header[1:]))
    for result in results:
        print(result.row())
    print(f"server memory under {WORST_CASE_CLIENTS} concurrent worst-case uploads:")
    print(f"{'upload':<28} {'status':>8} {'before MB':>10} {'peak MB':>10} {'grown MB':>9}")
    for worst in memory:
        print(worst.row())


if __name__ == "__main__":
    main()
