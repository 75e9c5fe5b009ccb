from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import Role
from accounts.services import key_issue, organization_ensure


class Command(BaseCommand):
    help = "Set up the demo organization and dashboard user for `make run`, and print a fresh admin key."

    def handle(self, *args: Any, **options: Any) -> None:
        org = organization_ensure(slug="demo", plan_slug="professional", name="Demo Hospital")
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "", password)
            self.stdout.write(f"Dashboard (/admin/): user admin, password {password}")
        _, plaintext = key_issue(organization=org, name="make run", role=Role.ADMIN)
        self.stdout.write(f"API key (admin role, organization demo): {plaintext}")
