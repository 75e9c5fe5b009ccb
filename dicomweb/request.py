"""One DICOMweb request as the handlers see it: who asks (key, organization, plan), the path's
UIDs, the query string, headers, and the answers every handler sends (PS3.18 §8)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from accounts.models import Organization
from core.asgi import Receive, Scope, Send
from core.errors import bad_request
from core.headers import NO_STORE, header
from core.links import base_from_scope
from dicom.media_types import DICOM_JSON
from dicom.uid import uid_is_acceptable
from dicomweb.selectors import Target
from studies.ingest.pacing import pacer

# Who reads: the organization of the Bearer key, or of a dashboard viewer session
# (dashboard/viewer_access.py), which may only use these methods.
ORGANIZATION = "dicomweb_organization"
READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Request:
    scope: Scope
    receive: Receive
    send: Send
    params: dict[str, str]  # from the path: study, series, instance, frames, path
    _query: list[tuple[str, str]] | None = field(default=None, init=False)

    @property
    def organization(self) -> Organization:
        organization: Organization = self.scope[ORGANIZATION]
        return organization

    def header(self, name: bytes) -> str | None:
        return header(self.scope, name)

    def base(self) -> str:
        """``scheme://host[:port]`` for absolute links (core/links.py)."""
        return base_from_scope(self.scope)

    def query(self) -> list[tuple[str, str]]:
        """The query string's (name, value) pairs; 400 when it does not decode."""
        if self._query is None:
            raw = self.scope.get("query_string", b"").decode("latin-1")
            try:
                self._query = parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw), errors="strict")
            except (ValueError, UnicodeDecodeError):
                raise bad_request("The query string is malformed.", slug="bad-query-parameter") from None
        return self._query

    def uid(self, name: str) -> str | None:
        """A UID of the path, checked by the one UID rule (dicom/uid.py); 400 if invalid."""
        value = self.params.get(name)
        if value is not None and not uid_is_acceptable(value):
            raise bad_request(f"{value!r} is not a valid UID (PS3.5 §9.1).", slug="invalid-uid")
        return value

    def target(self) -> Target:
        study = self.uid("study")
        assert study is not None
        return Target(study, self.uid("series"), self.uid("instance"))

    async def pace(self, nbytes: int) -> None:
        """Downloads share the organization's streaming bandwidth with uploads (API.md, Plans)."""
        await pacer().pace(
            organization_id=self.organization.pk, bps=self.organization.plan.bandwidth_bps, nbytes=nbytes
        )

    async def send_body(self, status: int, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]]) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode("latin-1")),
                    (b"content-length", str(len(body)).encode()),
                    NO_STORE,
                    *headers,
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": body})

    async def send_dicom_json(self, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """``body``: JSON-able, or the JSON text already encoded (stored metadata)."""
        raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        await self.send_body(status, raw, DICOM_JSON, list(headers))
