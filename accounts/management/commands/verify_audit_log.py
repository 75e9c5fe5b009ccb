from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.audit.log import audit_head, audit_head_holds, audit_verify
from accounts.models import AuditEntry


class Command(BaseCommand):
    help = (
        "Check the audit log's keyed hash chain, and that heads recorded earlier are still there; "
        "exit non-zero naming the first broken entry. Prints the head to record elsewhere."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--expect",
            action="append",
            default=[],
            metavar="ID:HASH",
            help="a head recorded earlier (this command's output, or the `audit head` log line); repeatable",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        broken = audit_verify()
        if broken is not None:
            raise CommandError(f"audit log chain broken at entry {broken}")
        for expected in options["expect"]:
            entry_id, _, expected_hash = expected.partition(":")
            if not entry_id.isascii() or not entry_id.isdigit() or not expected_hash:
                raise CommandError(f"--expect takes ID:HASH, not {expected!r}")
            if not audit_head_holds(entry_id=int(entry_id), expected_hash=expected_hash):
                raise CommandError(f"audit log entry {entry_id} recorded as a head is gone or changed")
        head = audit_head()
        shown = f"{head[0]}:{head[1]}" if head else "none"
        self.stdout.write(f"audit log intact: {AuditEntry.objects.count()} entries, head {shown}")
