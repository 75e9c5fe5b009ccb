"""ASGI types and small helpers for the raw ASGI apps (consumers, middleware).

Plain dict aliases rather than asgiref.typing's TypedDicts, which do not fit here: our scopes
carry keys of their own (``request_id`` from the gateway, ``api_key`` from the key check), and
middleware rewrites messages with ``dict(message, headers=...)``, which mypy cannot match to a
TypedDict union without a cast at every step.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json(send: Send, status: int, body: dict[str, Any], headers: Headers = ()) -> None:
    """Answer a raw ASGI HTTP request with a JSON body."""
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": raw})
