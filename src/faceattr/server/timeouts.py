"""A time limit on request bodies, which uvicorn does not have: it waits without end for a body
shorter than its Content-Length. :class:`BodyTimeout` answers 408 when a body stalls, so a slow
client cannot hold a connection (and its buffered upload) for longer than that; uvicorn's own
``timeout_keep_alive`` closes idle connections between requests (see ``faceattr serve``)."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTimeout:
    """ASGI middleware: a request whose next body chunk does not arrive within ``seconds`` is
    refused with 408 (raised inside the app, so its exception handlers answer it)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"the body timeout must be positive, got {seconds}")
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a ``receive`` that waits at most ``seconds`` for each body chunk."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        complete = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:  # the body is in: what follows is a disconnect, however late
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                raise HTTPException(
                    408, f"request body too slow: nothing received for {self.seconds:g} s"
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
