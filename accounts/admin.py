"""Dashboard for organizations, plans and API keys.

Creating a key renders its plaintext once, in the response to the form post; it is never put
in a message, session or log, so nothing can show it again. The add form carries a one-time
token: posting it again (a reload of the "key created" page) shows that key's page without its
plaintext and issues nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.contrib import admin
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import APIKey, Organization, Plan
from accounts.services import key_issue, key_revoke


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = ("name", "requests_per_minute", "bandwidth_bps", "max_study_bytes")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin[Organization]):
    list_display = ("name", "slug", "plan", "created", "usage")
    list_filter = ("plan",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("usage",)

    @admin.display(description="Usage")
    def usage(self, organization: Organization) -> str:
        if organization.pk is None:
            return "-"
        return format_html(
            '<a href="{}">Usage against the plan</a>', reverse("organization-usage", args=[organization.pk])
        )


@admin.action(description="Revoke selected keys (cannot be undone)")
def revoke_keys(modeladmin: APIKeyAdmin, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
    for key in queryset.filter(revoked_at__isnull=True):
        key_revoke(key=key)
    modeladmin.message_user(request, "Selected keys are revoked.")


ISSUE_TOKEN_TTL_S = 24 * 3600


def _issued_cache_key(token: str) -> str:
    return f"dashboard:key-issued:{token}"


class APIKeyAddForm(forms.ModelForm[APIKey]):
    # Fresh per rendered form; the key issued for it is remembered (cache) so a re-post issues none.
    issue_token = forms.CharField(widget=forms.HiddenInput, initial=lambda: secrets.token_urlsafe(24), max_length=64)

    class Meta:
        model = APIKey
        fields = ("organization", "name", "role", "expires_at")


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin[APIKey]):
    # The role's code, not its label ("Standard (upload, read, stream)"): the list stays narrow.
    list_display = ("prefix", "name", "organization", "role_code", "created", "last_used", "expires_at", "revoked_at")
    list_filter = ("role", "organization", "revoked_at")
    search_fields = ("prefix", "name", "organization__slug")
    actions = [revoke_keys]
    fields = ("organization", "name", "role", "expires_at")
    readonly_fields = ("prefix", "created", "last_used", "revoked_at")

    @admin.display(description="role", ordering="role")
    def role_code(self, key: APIKey) -> str:
        return key.role

    def get_form(self, request: HttpRequest, obj: APIKey | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = APIKeyAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: APIKey | None = None) -> Any:
        if obj is None:
            return (*self.fields, "issue_token")
        return ("prefix", "organization", "name", "role", "created", "last_used", "expires_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: APIKey | None = None) -> Any:
        if obj is None:
            return ()
        # A key's owner and role are what it was issued with; issue a new key to change them.
        return ("prefix", "organization", "role", "created", "last_used", "revoked_at")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        token = request.POST.get("issue_token", "") if request.method == "POST" else ""
        issued = cache.get(_issued_cache_key(token)) if token else None
        if issued is not None:  # the same form posted again: a reload, not a request for a new key
            key = APIKey.objects.filter(pk=issued).select_related("organization").first()
            if key is not None:
                return self._created_page(request, key, plaintext=None)
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: APIKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, plaintext = key_issue(
            organization=obj.organization, name=obj.name, role=obj.role, expires_at=obj.expires_at
        )
        obj.pk, obj.prefix = key.pk, key.prefix
        cache.set(_issued_cache_key(form.cleaned_data["issue_token"]), key.pk, ISSUE_TOKEN_TTL_S)
        request.issued_key_plaintext = plaintext  # type: ignore[attr-defined]  # read once by response_add

    def response_add(self, request: HttpRequest, obj: APIKey, post_url_continue: str | None = None) -> HttpResponse:
        plaintext = getattr(request, "issued_key_plaintext", None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        return self._created_page(request, obj, plaintext=plaintext)

    def _created_page(self, request: HttpRequest, key: APIKey, *, plaintext: str | None) -> HttpResponse:
        """The "key created" page: with the plaintext once, without it when the form comes again."""
        context = {**self.admin_site.each_context(request), "key": key, "plaintext": plaintext, "opts": self.opts}
        response = TemplateResponse(request, "admin/accounts/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def has_delete_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        return False  # keys are revoked, not deleted: their prefix stays resolvable in audit entries


# The audit log's admin lives with the rest of the audit code; importing registers it.
from accounts.audit import admin as audit_admin  # noqa: E402, F401
