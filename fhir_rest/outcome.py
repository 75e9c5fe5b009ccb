"""Errors under /fhir as FHIR OperationOutcome resources (API.md, Common headers and errors).

Every refusal on these routes is first an RFC 9457 problem, whoever makes it: the FHIR app
(an ApiError), the key check or the rate limit in front of it. ``OperationOutcomeMiddleware``,
outermost on the FHIR route, rewrites each problem answer into an OperationOutcome with the
same status, so there is one conversion and no refusal escapes it. The ``issue.code`` follows
the status (FHIR R4 IssueType), unless the problem names one (``issue_code``).
"""

from __future__ import annotations

import json
from typing import Any

from core.asgi import ASGIApp, Message, Receive, Scope, Send
from core.errors import ApiError
from core.fhir import FHIR_JSON

# The FHIR R4 media type with the version parameter (FHIR R4 §3.1.0.1.10).
FHIR_JSON_R4 = f"{FHIR_JSON}; fhirVersion=4.0"
PROBLEM = b"application/problem+json"
ISSUE_CODES = {
    400: "invalid",
    401: "security",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",
}


def fhir_error(status: int, detail: str, issue_code: str, **extra: Any) -> ApiError:
    """An ApiError whose OperationOutcome carries ``issue_code`` instead of the status's."""
    return ApiError(status, detail, slug=issue_code, issue_code=issue_code, **extra)


def operation_outcome(problem: dict[str, Any], status: int) -> dict[str, Any]:
    """The OperationOutcome of an RFC 9457 problem body: one error issue, its ``details.text``
    the problem's detail, ``diagnostics`` its type and request id (for support)."""
    code = problem.get("issue_code") or ISSUE_CODES.get(status, "exception")
    issue: dict[str, Any] = {
        "severity": "error",
        "code": code,
        "details": {"text": str(problem.get("detail") or problem.get("title") or "Error")},
        "diagnostics": f"{problem.get('type', '')} request_id={problem.get('request_id', '')}".strip(),
    }
    if problem.get("parameter"):
        issue["expression"] = [str(problem["parameter"])]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


class OperationOutcomeMiddleware:
    """Rewrite problem+json answers of the wrapped app as OperationOutcome (FHIR JSON)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        held: list[Message] = []  # the response start of a problem, until its body is whole
        body = bytearray()

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if any(k.lower() == b"content-type" and v.startswith(PROBLEM) for k, v in headers):
                    held.append(message)
                    return
            elif held:
                body.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                await _send_outcome(send, held[0], bytes(body))
                return
            await send(message)

        await self.app(scope, receive, rewrite)


async def _send_outcome(send: Send, start: Message, problem: bytes) -> None:
    try:
        parsed = json.loads(problem)
    except ValueError:
        parsed = {}
    raw = json.dumps(operation_outcome(parsed, start["status"])).encode()
    kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-type", b"content-length")]
    headers = [(b"content-type", FHIR_JSON_R4.encode()), (b"content-length", str(len(raw)).encode()), *kept]
    await send({"type": "http.response.start", "status": start["status"], "headers": headers})
    await send({"type": "http.response.body", "body": raw})
