from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.auth import key_authenticate
from accounts.models import APIKey


class BearerAuthentication(BaseAuthentication):
    """DRF side of key authentication: ApiKeyDjangoMiddleware has already resolved the key."""

    def authenticate(self, request: Request) -> tuple[APIKey, APIKey] | None:
        if hasattr(request._request, "api_key"):
            key: APIKey | None = request._request.api_key
        else:  # a DRF view outside /api/v2/ (the schema): same check, done here
            key = key_authenticate(request.META.get("HTTP_AUTHORIZATION"))
        if key is None:
            if request.META.get("HTTP_AUTHORIZATION"):
                raise exceptions.AuthenticationFailed()
            return None
        return key, key

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
