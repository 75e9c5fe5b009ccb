"""Verified keys are kept in each process for PRIZMED_KEY_CACHE_SECONDS (accounts/key_cache.py):
a key's later requests make no key query, yet a revocation, and a key, organization or plan
changed through the ORM, apply to the very next request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.auth import key_authenticate
from accounts.services import key_revoke
from tests.support import live
from tests.support.world import World
from tests.test_key_revocation import revoke_in_dashboard


def test_a_verified_key_is_not_looked_up_again(world: World, django_assert_num_queries) -> None:
    header = f"Bearer {world.bob.token}"
    assert key_authenticate(header) == world.bob.key
    with django_assert_num_queries(0):
        assert key_authenticate(header) == world.bob.key


@override_settings(PRIZMED_KEY_CACHE_SECONDS=0)
def test_no_key_is_kept_when_the_cache_is_off(world: World, django_assert_num_queries) -> None:
    header = f"Bearer {world.bob.token}"
    assert key_authenticate(header) == world.bob.key
    with django_assert_num_queries(1):
        assert key_authenticate(header) == world.bob.key


def test_a_revoked_key_is_refused_on_its_next_request(world: World) -> None:
    header = f"Bearer {world.bob.token}"
    assert key_authenticate(header) is not None
    key_revoke(key=world.bob.key)
    assert key_authenticate(header) is None


def test_a_cached_key_that_expires_is_refused(world: World) -> None:
    header = f"Bearer {world.bob.token}"
    world.bob.key.expires_at = timezone.now() + timedelta(hours=1)
    world.bob.key.save()
    cached = key_authenticate(header)
    assert cached is not None
    cached.expires_at = timezone.now() - timedelta(seconds=1)  # as time passing would leave it
    assert key_authenticate(header) is None


def test_a_plan_changed_applies_to_the_next_request(world: World) -> None:
    header = f"Bearer {world.bob.token}"
    assert key_authenticate(header).organization.plan.requests_per_minute != 7  # type: ignore[union-attr]
    plan = world.bob.org.plan
    plan.requests_per_minute = 7
    plan.save()
    assert key_authenticate(header).organization.plan.requests_per_minute == 7  # type: ignore[union-attr]


@pytest.fixture
def long_cache(child_env: dict[str, str], run_dir: Path) -> Iterator[live.Server]:
    """A server that keeps verified keys for an hour: only the revocation's wake-up can end one."""
    srv = live.server(
        {**child_env, "PRIZMED_KEY_CACHE_SECONDS": "3600", "PRIZMED_KEY_RECHECK_SECONDS": "3600"}, run_dir
    )
    yield srv
    srv.stop()


def test_a_key_revoked_in_the_dashboard_is_refused_by_the_server_at_once(long_cache: live.Server, world: World) -> None:
    with httpx.Client(base_url=long_cache.url, headers=world.bob.headers, timeout=30) as api:
        assert api.get("/api/v2/organization").status_code == 200
        assert api.get("/api/v2/dicomweb/studies").status_code == 200  # the consumers' check too
        revoke_in_dashboard(long_cache, world.bob.key.pk)
        assert api.get("/api/v2/organization").status_code == 401
        assert api.get("/api/v2/dicomweb/studies").status_code == 401
