"""A WebSocket client that talks ASGI to the app on the test's own event loop.

starlette's TestClient runs the app in another thread with its own loop, where the
test's database engine and bus cannot follow; this drives the same ASGI messages a
server would, in-loop. ``stall()`` makes the client stop reading, as a slow client does:
the app's sends then block until ``resume()`` (a close still gets through, as a
server can always drop a connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class WsClient:
    def __init__(self, app: Any, path: str = "/ws") -> None:
        self._app = app
        self._path = path
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reading = asyncio.Event()
        self._reading.set()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WsClient:
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": self._path,
            "raw_path": self._path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("203.0.113.7", 40000),
            "server": ("testserver", 80),
            "subprotocols": [],
            "state": {},
        }
        self._task = asyncio.create_task(self._app(scope, self._receive, self._send))
        await self._to_app.put({"type": "websocket.connect"})
        accepted = await asyncio.wait_for(self._from_app.get(), 5)
        assert accepted["type"] == "websocket.accept", accepted
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reading.set()
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        assert self._task is not None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 5)

    async def _receive(self) -> dict[str, Any]:
        return await self._to_app.get()

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            await self._reading.wait()
        await self._from_app.put(message)

    def stall(self) -> None:
        self._reading.clear()

    def resume(self) -> None:
        self._reading.set()

    async def send_json(self, body: Any) -> None:
        await self._to_app.put({"type": "websocket.receive", "text": json.dumps(body)})

    async def send_text(self, text: str) -> None:
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def receive_json(self, timeout: float = 5) -> dict[str, Any]:
        message = await asyncio.wait_for(self._from_app.get(), timeout)
        if message["type"] == "websocket.close":
            raise Closed(message.get("code", 1000), message.get("reason", ""))
        return json.loads(message["text"])

    async def nothing_within(self, seconds: float = 0.1) -> bool:
        """True if no message arrives within ``seconds``."""
        try:
            message = await asyncio.wait_for(self._from_app.get(), seconds)
        except TimeoutError:
            return True
        await self._from_app.put(message)  # put back (order is not kept; tests use it when idle)
        return False

    async def close_frame(self, timeout: float = 5) -> Closed:
        """Skip messages until the server closes; the close code and reason."""
        while True:
            message = await asyncio.wait_for(self._from_app.get(), timeout)
            if message["type"] == "websocket.close":
                return Closed(message.get("code", 1000), message.get("reason", ""))
