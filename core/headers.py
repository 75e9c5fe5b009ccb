"""Request header helpers for raw ASGI code (consumers and middleware)."""

from __future__ import annotations

import uuid

from core.asgi import Scope


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (names are lower-case bytes in ASGI)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def parse_uuid4(value: str) -> uuid.UUID | None:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if parsed.version == 4 and str(parsed) == value.lower() else None
