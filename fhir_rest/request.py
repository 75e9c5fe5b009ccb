"""One FHIR request as the handlers see it (who asks, the parameters, the base for links) and
the answer they give: FHIR JSON, ``Cache-Control: no-store``, ``ETag``/``Last-Modified`` for
reads. Content negotiation (FHIR R4 §3.1.0.1.10): JSON only; ``_format`` or an ``Accept``
that asks for XML (or anything but JSON) is a 406.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from accounts.models import APIKey
from core.asgi import Receive, Scope, Send
from core.errors import too_large
from core.headers import header
from core.links import base_from_scope
from fhir_rest.capabilities import FHIR_PATH
from fhir_rest.outcome import FHIR_JSON_R4, fhir_error

MAX_FORM_BYTES = 64 * 1024  # a POST _search body: a query, never more
JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_ANY = {"*/*", "application/*"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] | None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class FhirRequest:
    scope: Scope
    receive: Receive
    params: dict[str, str]  # from the path: type, id
    form: list[tuple[str, str]] = field(default_factory=list)  # POST _search's body

    @property
    def key(self) -> APIKey:
        key: APIKey = self.scope["api_key"]
        return key

    @property
    def organization_id(self) -> int:
        return self.key.organization_id

    def header(self, name: bytes) -> str | None:
        return header(self.scope, name)

    def base(self) -> str:
        """``scheme://host[:port]`` (core/links.py: PRIZMED_PUBLIC_URL or the request's own)."""
        return base_from_scope(self.scope)

    def fhir_base(self) -> str:
        return self.base() + FHIR_PATH

    def pairs(self) -> list[tuple[str, str]]:
        """The query string's (name, value) pairs, then the POST _search body's (§3.1.1.3)."""
        raw = self.scope.get("query_string", b"").decode("latin-1")
        return [*_decode(raw, "The query string"), *self.form]

    async def read_form(self) -> None:
        """Read a POST _search body (application/x-www-form-urlencoded), at most MAX_FORM_BYTES."""
        kind = (self.header(b"content-type") or "").split(";")[0].strip().lower()
        body = bytearray()
        while True:
            message = await self.receive()
            body.extend(message.get("body", b""))
            if len(body) > MAX_FORM_BYTES:
                raise too_large(MAX_FORM_BYTES)
            if not message.get("more_body"):
                break
        if not body:
            return
        if kind != "application/x-www-form-urlencoded":
            raise fhir_error(415, "POST _search takes application/x-www-form-urlencoded.", "not-supported")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise fhir_error(400, "The form body is not UTF-8.", "invalid") from None
        self.form = _decode(text, "The form body")


def _decode(raw: str, what: str) -> list[tuple[str, str]]:
    if not raw:
        return []
    try:
        return parse_qsl(raw, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise fhir_error(400, f"{what} is malformed.", "invalid") from None


def _media_types(accept: str) -> list[str]:
    types = []
    for item in accept.split(","):
        kind, *params = (part.strip().lower() for part in item.split(";"))
        if not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            types.append(kind)
    return types


def negotiate(scope: Scope, pairs: list[tuple[str, str]]) -> None:
    """Refuse (406) a request for anything but FHIR JSON, by ``_format`` first, then ``Accept``."""
    formats = [value for name, value in pairs if name == "_format"]
    for value in formats:
        if value.strip().lower() not in JSON_FORMATS:
            raise _not_acceptable(f"_format={value}")
    accept = header(scope, b"accept")
    if formats or accept is None or not accept.strip():
        return
    types = _media_types(accept)
    if not any(kind in JSON_FORMATS or kind in _ANY for kind in types):
        raise _not_acceptable(f"Accept: {accept}")


def _not_acceptable(asked: str) -> Exception:
    return fhir_error(406, f"{asked} is not served: this FHIR API answers in JSON only ({FHIR_JSON_R4}).",
                      "not-supported")  # fmt: skip


async def send_answer(send: Send, answer: Answer) -> None:
    raw = b"" if answer.body is None else json.dumps(answer.body, separators=(",", ":")).encode()
    headers = [(b"cache-control", b"no-store")]  # patient data (API.md, Common headers)
    if answer.body is not None:
        headers += [(b"content-type", FHIR_JSON_R4.encode()), (b"content-length", str(len(raw)).encode())]
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
