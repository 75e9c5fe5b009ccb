from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import Role
from accounts.services import key_issue, organization_ensure


class Command(BaseCommand):
    help = "Create the organization if needed, issue an API key and print it, alone, on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--plan", choices=["developer", "professional", "enterprise"])
        parser.add_argument("--role", choices=[r.value for r in Role], default=Role.STANDARD.value)
        parser.add_argument("--name", default="cli")

    def handle(self, *args: Any, **options: Any) -> None:
        org = organization_ensure(slug=options["org"], plan_slug=options["plan"])
        _, plaintext = key_issue(organization=org, name=options["name"], role=options["role"])
        self.stdout.write(plaintext)
