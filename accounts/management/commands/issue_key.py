from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.management.commands._migrated import require_migrated
from accounts.models import Role
from accounts.services import key_issue, organization_ensure

_DURATION = re.compile(r"([1-9][0-9]{0,4})([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def expiry_parse(text: str) -> datetime:
    """``--expires``: a duration from now (``12h``, ``30d``, ``8w``) or an ISO 8601 date-time
    with its offset (``2027-01-01T00:00:00Z``). Raises CommandError for anything else or a past time."""
    if match := _DURATION.fullmatch(text):
        return timezone.now() + timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        when = parse_datetime(text.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise CommandError(f"--expires {text!r}: give a duration (12h, 30d, 8w) or an ISO 8601 time with offset")
    if when <= timezone.now():
        raise CommandError(f"--expires {text!r} is in the past")
    return when


class Command(BaseCommand):
    help = "Create the organization if needed, issue an API key and print it, alone, on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--plan", choices=["developer", "professional", "enterprise"])
        parser.add_argument("--role", choices=[r.value for r in Role], default=Role.STANDARD.value)
        parser.add_argument("--name", default="cli")
        parser.add_argument("--expires", help="12h, 30d, 8w or an ISO 8601 time (default: never expires)")

    def handle(self, *args: Any, **options: Any) -> None:
        expires_at = None if options["expires"] is None else expiry_parse(options["expires"])
        require_migrated()
        org = organization_ensure(slug=options["org"], plan_slug=options["plan"])
        _, plaintext = key_issue(organization=org, name=options["name"], role=options["role"], expires_at=expires_at)
        self.stdout.write(plaintext)
