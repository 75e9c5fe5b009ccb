"""CORS for the raw ASGI routes by django-cors-headers' own rule (API.md: browser clients on
configured origins; a preflight needs no key).

Django views get CORS from ``corsheaders.middleware.CorsMiddleware`` (first in MIDDLEWARE);
the consumers are not Django views, so this ASGI middleware asks the same ``CorsMiddleware``
for its decision on a minimal Django request built from the scope: one configuration
(``CORS_*`` settings), one implementation. It sits in front of the key check, so a preflight
(OPTIONS with Access-Control-Request-Method) is answered without one.
"""

from __future__ import annotations

from corsheaders.middleware import CorsMiddleware
from django.http import HttpRequest, HttpResponse

from core.asgi import ASGIApp, Message, Receive, Scope, Send

_cors = CorsMiddleware(lambda request: HttpResponse())
_VARY_ORIGIN = (b"vary", b"origin")


def _request(scope: Scope) -> HttpRequest:
    request = HttpRequest()
    request.method = scope["method"]
    request.path = request.path_info = scope["path"]
    for name, value in scope.get("headers", ()):
        key = name.decode("latin-1").upper().replace("-", "_")
        request.META[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value.decode("latin-1")
    return request


def cors_headers(scope: Scope) -> tuple[bool, list[tuple[bytes, bytes]]]:
    """(is this a preflight, the CORS headers of the answer), as CorsMiddleware decides them."""
    if scope["method"] != "OPTIONS" and not any(name == b"origin" for name, _ in scope.get("headers", ())):
        # No Origin (every non-browser client): CorsMiddleware adds at most `Vary: origin`, and
        # decides whether from the path alone; no request with every header copied is needed.
        bare = HttpRequest()
        bare.path = bare.path_info = scope["path"]
        return False, [_VARY_ORIGIN] if _cors.is_enabled(bare) else []
    request = _request(scope)
    preflight = _cors.check_preflight(request) is not None
    response = _cors.add_response_headers(request, HttpResponse())
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.items()
        if name.lower().startswith("access-control-") or name.lower() == "vary"
    ]
    return preflight, headers


class CorsAsgiMiddleware:
    """Answer preflights and add CORS headers to every answer of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        preflight, headers = cors_headers(scope)
        if preflight:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"0"), *headers]})  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and headers:
                message = dict(message, headers=[*message.get("headers", []), *headers])
            await send(message)

        await self.app(scope, receive, send_with_cors)
