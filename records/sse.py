"""Server-Sent Events encoding (WHATWG HTML §9.2.5)."""

from __future__ import annotations


def sse(*, data: str, event: str | None = None, seq: int | None = None) -> bytes:
    """One event; `data` is a JSON text, hence a single line."""
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if seq is not None:
        lines.append(f"id: {seq}")
    lines.append(f"data: {data}")
    return ("\n".join(lines) + "\n\n").encode()
