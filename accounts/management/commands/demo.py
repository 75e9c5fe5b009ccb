from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import APIKey, Role
from accounts.services import key_issue, organization_ensure

KEY_NAME = "make run"
ANOTHER_KEY = ".venv/bin/python manage.py issue_key --org demo --role admin --expires 30d"


class Command(BaseCommand):
    help = (
        "Set up the demo organization and dashboard user for `make run`; print an admin key the first "
        "time only (its plaintext is never stored), and afterwards how to issue another."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        org = organization_ensure(slug="demo", plan_slug="professional", name="Demo Hospital")
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "", password)
            self.stdout.write(f"Dashboard (/admin/): user admin, password {password}")
        if APIKey.objects.filter(organization=org, name=KEY_NAME).exists():
            # One demo key per data dir: a new one on every start would pile up never-expiring admin keys.
            self.stdout.write(f"The demo admin key was printed on the first `make run`. Another: {ANOTHER_KEY}")
            return
        _, plaintext = key_issue(organization=org, name=KEY_NAME, role=Role.ADMIN)
        self.stdout.write(f"API key (admin role, organization demo): {plaintext}")
