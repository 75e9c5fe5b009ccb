from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.audit.log import audit_verify
from accounts.models import AuditEntry


class Command(BaseCommand):
    help = "Check the audit log's hash chain; exit non-zero naming the first broken entry."

    def handle(self, *args: Any, **options: Any) -> None:
        broken = audit_verify()
        if broken is not None:
            raise CommandError(f"audit log chain broken at entry {broken}")
        self.stdout.write(f"audit log intact: {AuditEntry.objects.count()} entries")
