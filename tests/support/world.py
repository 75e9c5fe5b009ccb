"""The named test world: org acme with alice (admin) and bob (standard), org globex with carol,
plus an expired and a revoked key of acme; and the clock file the servers read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from accounts.models import APIKey, Organization, Role
from accounts.services import key_issue, key_revoke, organization_ensure

CLOCK_START = 1_900_000_020.0  # a fixed epoch, 20 s into a window


@dataclass
class Party:
    org: Organization
    key: APIKey
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    alice: Party  # acme, admin
    bob: Party  # acme, standard
    carol: Party  # globex, standard
    expired: Party  # acme, expired yesterday
    revoked: Party  # acme, revoked


def party(org: Organization, name: str, role: str = Role.STANDARD, **kw: object) -> Party:
    key, token = key_issue(organization=org, name=name, role=role, **kw)  # type: ignore[arg-type]
    return Party(org=org, key=key, token=token)


def world_build() -> World:
    acme = organization_ensure(slug="acme", plan_slug="professional", name="Acme Hospital")
    globex = organization_ensure(slug="globex", plan_slug="professional", name="Globex Imaging")
    revoked = party(acme, "old")
    key_revoke(key=revoked.key)
    return World(
        alice=party(acme, "alice", Role.ADMIN),
        bob=party(acme, "bob"),
        carol=party(globex, "carol"),
        expired=party(acme, "expired", expires_at=timezone.now() - timedelta(days=1)),
        revoked=revoked,
    )


class Clock:
    """The rate-limit clock the servers read from a file (PRIZMED_CLOCK_FILE)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> float:
        return float(self.path.read_text())

    def set(self, value: float) -> None:
        self.path.write_text(repr(value))

    def advance(self, seconds: float) -> None:
        self.set(self.now() + seconds)

    def next_window(self) -> None:
        """Move to 20 s into the next one-minute window: counters of earlier tests are gone."""
        self.set((self.now() // 60 + 1) * 60 + 20)
