"""Celery tasks of the accounts app: thin adapters over its services."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts.audit.log import audit_head
from accounts.usage import usage_prune

log = logging.getLogger("prizmed.audit")


@shared_task(name="accounts.log_audit_head")
def log_audit_head() -> str | None:
    """Write the audit log's head (id:hash) to the application log, which is shipped outside the
    database: a later `verify_audit_log --expect ID:HASH` shows whether entries up to it were
    removed (CELERY_BEAT_SCHEDULE runs it every PRIZMED_AUDIT_HEAD_LOG_SECONDS)."""
    head = audit_head()
    if head is None:
        return None
    anchor = f"{head[0]}:{head[1]}"
    log.info("audit head %s", anchor, extra={"audit_head": anchor})
    return anchor


@shared_task(name="accounts.prune_usage")
def prune_usage() -> int:
    """Apply the usage rows' retention (CELERY_BEAT_SCHEDULE runs it hourly)."""
    return usage_prune()
