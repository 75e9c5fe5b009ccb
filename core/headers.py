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


# What carries patient data or upload state is never cached (API.md, Common headers).
NO_STORE = (b"cache-control", b"no-store")


def with_no_store(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response headers, plus `Cache-Control: no-store` unless the response chose its own
    caching (static files): API answers carry PHI or upload state, which no cache may keep
    (RFC 9111 §5.2.2.5; HIPAA §164.312(c))."""
    if any(name.lower() == b"cache-control" for name, _ in headers):
        return headers
    return [*headers, NO_STORE]
