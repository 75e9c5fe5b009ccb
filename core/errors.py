"""The one API error type: a refusal the client may see, whoever serves the route.

Raised by services, selectors' callers, views and consumers alike; rendered as an RFC 9457
problem once for DRF views and Django (core.problems.drf_exception_handler, problem_response)
and once for raw ASGI apps (core.problems.send_problem). The constructors below name the
refusals several apps make; an app's own refusal builds an ApiError with its own slug.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from core.backends import unreachable_backend

AUTH_DETAIL = "A valid API key is required: Authorization: Bearer <key>."
INVALID_PARAMETERS = "The request has invalid parameters."


class ApiError(Exception):
    """``detail`` is safe to show the client; ``slug`` names the problem type (`/problems/<slug>`,
    the status's title when None); ``extra`` members join the problem body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.headers = tuple(headers)
        self.extra = extra


def bad_request(detail: str, *, slug: str = "bad-request") -> ApiError:
    return ApiError(400, detail, slug=slug)


def invalid_parameters(errors: Any) -> ApiError:
    """400 naming the parameters at fault, as DRF's serializer validation reports them."""
    return ApiError(400, INVALID_PARAMETERS, errors=errors)


def unauthorized() -> ApiError:
    """The one 401: it never says whether the key was missing, malformed, unknown, revoked or expired."""
    return ApiError(401, AUTH_DETAIL, headers=[("WWW-Authenticate", "Bearer")])


def forbidden(detail: str) -> ApiError:
    """403: the caller is known and may not do this."""
    return ApiError(403, detail, slug="forbidden")


def not_found(detail: str = "No such resource.") -> ApiError:
    return ApiError(404, detail)


def method_not_allowed(allowed: str) -> ApiError:
    return ApiError(405, f"Only {allowed} is allowed here.", headers=[("Allow", allowed)])


def conflict(detail: str) -> ApiError:
    return ApiError(409, detail, slug="conflict")


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"The payload exceeds {limit} bytes, the most this request may carry.", slug="too-large")


def server_failure(
    detail: str = "The server failed to handle this request.",
    *,
    slug: str | None = None,
    cause: BaseException | None = None,
) -> ApiError:
    """500 for a real failure (a bug, a disk), logged where it happened and never shown. When
    the failure (``cause``, by default the exception being handled) is an unreachable backend,
    it is that backend's 503 instead (``service_unavailable``)."""
    backend = unreachable_backend(cause if cause is not None else sys.exc_info()[1])
    if backend is not None:
        return service_unavailable(backend)
    return ApiError(500, detail, slug=slug)


def service_unavailable(backend: str) -> ApiError:
    """503 naming the backend that is unreachable (`database`, `redis`, `broker`), with
    Retry-After (RFC 9110 §10.2.3) of BACKEND_RETRY_AFTER_SECONDS."""
    retry_after = str(getattr(settings, "BACKEND_RETRY_AFTER_SECONDS", 5))
    return ApiError(
        503,
        f"A backend this request needs is unreachable ({backend}); try again shortly.",
        slug="backend-unavailable",
        headers=[("Retry-After", retry_after)],
        backend=backend,
    )
