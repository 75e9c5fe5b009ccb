from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import APIKey


class HasApiKey(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, APIKey)


class IsAdminKey(BasePermission):
    message = "This operation needs an admin-role API key."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, APIKey) and request.auth.is_admin
