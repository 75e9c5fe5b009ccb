"""The management commands a newcomer types: issue_key (with --expires) and `make run`'s demo."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.auth import key_authenticate
from accounts.models import APIKey
from tests.support import live
from tests.support.world import World


def _issue(**options: str) -> APIKey:
    out = io.StringIO()
    call_command("issue_key", org="hooli", stdout=out, **options)
    key = key_authenticate(f"Bearer {out.getvalue().strip()}")
    assert key is not None
    return key


def test_issue_key_expires_after_a_duration_or_at_a_time(world: World) -> None:
    before = timezone.now()
    in_30_days = _issue(expires="30d").expires_at
    assert in_30_days is not None and before + timedelta(days=30) <= in_30_days <= timezone.now() + timedelta(days=30)
    in_12_hours = _issue(expires="12h").expires_at
    assert in_12_hours is not None and in_12_hours - before <= timedelta(hours=12, minutes=1)
    assert _issue(expires="2099-01-01T00:00:00Z").expires_at == datetime(2099, 1, 1, tzinfo=UTC)
    assert _issue().expires_at is None


@pytest.mark.parametrize("given", ["2001-01-01T00:00:00Z", "30", "soon", "2099-01-01T00:00:00"])
def test_issue_key_refuses_an_expiry_it_cannot_honour(world: World, given: str) -> None:
    with pytest.raises(CommandError, match="--expires"):
        call_command("issue_key", "--org", "hooli", "--expires", given, stdout=io.StringIO())


def test_demo_issues_its_admin_key_once_then_says_how_to_get_another(world: World) -> None:
    first, second = io.StringIO(), io.StringIO()
    call_command("demo", stdout=first)
    call_command("demo", stdout=second)
    assert "API key (admin role, organization demo): pzm_" in first.getvalue()
    assert "pzm_" not in second.getvalue()
    assert "manage.py issue_key --org demo --role admin" in second.getvalue()
    assert APIKey.objects.filter(organization__slug="demo").count() == 1


def test_commands_find_the_generated_secret_key_and_name_an_unset_database(tmp_path: Path) -> None:
    """No SECRET_KEY in the environment: settings read the one `make run` wrote into the data dir;
    a data dir never migrated gets a sentence, not "no such table"."""
    (tmp_path / "secret_key").write_text("generated-by-make-run\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")}
    env["PRIZMED_DATA_DIR"] = str(tmp_path)
    argv = [sys.executable, "manage.py", "issue_key", "--org", "demo"]
    done = subprocess.run(argv, cwd=live.ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "SECRET_KEY" not in done.stderr and "Traceback" not in done.stderr
    assert "is not set up: run `make run`" in done.stderr
