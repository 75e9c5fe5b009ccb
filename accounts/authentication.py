from __future__ import annotations

from typing import cast

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.auth import key_authenticate
from accounts.models import APIKey

_UNRESOLVED = object()


class BearerAuthentication(BaseAuthentication):
    """DRF side of key authentication: ApiKeyDjangoMiddleware has already resolved the key."""

    def authenticate(self, request: Request) -> tuple[APIKey, APIKey] | None:
        # The middleware's answer on the HttpRequest, which DRF's Request hands through.
        resolved = getattr(request, "api_key", _UNRESOLVED)
        if resolved is _UNRESOLVED:  # a DRF view outside /api/v2/ (the schema): same check, done here
            key = key_authenticate(request.META.get("HTTP_AUTHORIZATION"))
        else:
            key = cast(APIKey | None, resolved)
        if key is None:
            if request.META.get("HTTP_AUTHORIZATION"):
                raise exceptions.AuthenticationFailed()
            return None
        return key, key

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
