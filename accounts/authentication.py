from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.auth import key_authenticate
from accounts.models import APIKey


class BearerAuthentication(BaseAuthentication):
    """DRF side of key authentication: ApiKeyMiddleware has already resolved the key."""

    def authenticate(self, request: Request) -> tuple[APIKey, APIKey] | None:
        scope: dict[str, Any] | None = getattr(request._request, "scope", None)
        if scope is not None and "api_key" in scope:
            key = scope["api_key"]
        else:  # not under ASGI (Django's test client): same check, done here
            key = key_authenticate(request.META.get("HTTP_AUTHORIZATION"))
        if key is None:
            if request.META.get("HTTP_AUTHORIZATION"):
                raise exceptions.AuthenticationFailed()
            return None
        return key, key

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
