from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import APIKey


class HasApiKey(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, APIKey)


ADMIN_ONLY = "This operation needs an admin-role API key."


class IsAdminKey(BasePermission):
    message = ADMIN_ONLY

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, APIKey) and request.auth.is_admin


def request_key(request: Request) -> APIKey:
    """The calling key of a view guarded by HasApiKey or IsAdminKey (so it is always there)."""
    key = request.auth
    if not isinstance(key, APIKey):
        raise TypeError("request_key needs a view that requires an API key")
    return key
