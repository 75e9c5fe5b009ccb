"""studies/read_app.py answers GET and HEAD of a study and its series on raw ASGI exactly as the
DRF views behind Django's handler do: status, headers and body bytes, for every kind of key,
UID, Accept, Origin and Host (what only Django answers alike goes to Django, core/view_parity.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import Any

import pytest
from django.urls import re_path
from django.utils import timezone

from accounts import usage
from accounts.models import Organization, Plan
from core.gateway import RequestIdMiddleware
from core.one_hop_asgi import OneHopASGIHandler
from prizmed.routing import study_read_route
from studies.models import Patient, Series, Study
from tests.support.world import World

UID = "1.2.826.0.1.3680043.10.511.9"
REQUEST_ID = "0b7f6a1e-3c2d-4e5f-8a9b-0c1d2e3f4a5b"
ORIGIN = "https://viewer.example"


@pytest.fixture(autouse=True)
def usage_kept_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """These requests are counted in this process (accounts/usage.py): their counts stay out of
    the process's pending ones (tests/unit/test_usage.py flushes those) and start no flush thread."""
    monkeypatch.setattr(usage, "_pending", defaultdict(lambda: [0, 0, 0]))
    monkeypatch.setattr(usage, "_flusher", threading.current_thread())


def stack(*, fast: bool) -> Any:
    from channels.routing import URLRouter

    django = OneHopASGIHandler()
    routes = [study_read_route(django)] if fast else []
    return RequestIdMiddleware(URLRouter([*routes, re_path(r"", django)]))  # type: ignore[arg-type]  # an ASGI app


def answer(app: Any, method: str, path: str, headers: list[tuple[str, str]], query: str = "") -> dict[str, Any]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"localhost"), (b"x-request-id", REQUEST_ID.encode()),
                    *((k.lower().encode(), v.encode()) for k, v in headers)],
        "client": ("127.0.0.1", 50000), "server": ("localhost", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    headers_sent = sorted(
        (k.decode().lower(), "<counted>" if k.lower().startswith(b"x-ratelimit-") else v.decode())
        for k, v in sent[0]["headers"]
    )
    return {"status": sent[0]["status"], "headers": headers_sent, "body": b"".join(m.get("body", b"") for m in sent)}


def study_of(org: Organization) -> Study:
    now = timezone.now()
    patient = Patient.objects.create(organization=org, patient_id="P-1", name="Doe^Jane=山田^花子", sex="F")
    study = Study.objects.create(organization=org, patient=patient, study_uid=UID, modalities=["CT"], series_count=2,
                                 instance_count=3, bytes=99, description="Line\u2028separator", first_received=now,
                                 last_received=now)  # fmt: skip
    for number in (2, None):
        prefix = f"acme/{number}/" if number else ""
        Series.objects.create(study=study, series_uid=f"{UID}.{number}", number=number, modality="CT",
                              instance_count=1, bytes=33, storage_prefix=prefix)  # fmt: skip
    return study


@pytest.mark.parametrize("path", [f"/api/v2/studies/{UID}", f"/api/v2/studies/{UID}/series"])
def test_it_answers_as_the_drf_views_do(world: World, settings: Any, path: str) -> None:
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    study_of(world.alice.org)
    bob = ("Authorization", f"Bearer {world.bob.token}")
    cases: list[tuple[str, str, list[tuple[str, str]], str]] = [
        ("GET", path, [bob], ""),
        ("HEAD", path, [bob], ""),
        ("GET", path, [bob, ("Accept", "application/json")], "unknown=1"),
        ("GET", path, [bob, ("Accept", "text/html")], ""),  # 406, from Django
        ("GET", path, [bob, ("Accept", "application/json; indent=2")], ""),
        ("GET", path, [bob], "format=xml"),
        ("GET", path, [bob, ("Origin", ORIGIN)], ""),
        ("GET", path, [bob, ("Origin", "https://elsewhere.example")], ""),
        ("GET", path, [bob, ("Cookie", "sessionid=x")], ""),
        ("GET", path, [bob, ("Host", "forged.example")], ""),
        ("GET", path, [("Authorization", f"Bearer {world.carol.token}")], ""),  # another tenant: 404
        ("GET", path, [], ""),
        ("GET", path, [("Authorization", "Bearer nope")], ""),
        ("GET", path, [("Authorization", f"Bearer {world.revoked.token}")], ""),
        ("GET", path, [bob], f"api_key={world.bob.token}"),
        ("GET", path.replace(UID, "1.2.3.4"), [bob], ""),  # unknown: 404
        ("GET", path.replace(UID, "1..2"), [bob], ""),  # malformed: 400
        ("OPTIONS", path, [bob], ""),
        ("POST", path, [bob], ""),
    ]
    fast, django = stack(fast=True), stack(fast=False)
    for method, where, headers, query in cases:
        ours, theirs = answer(fast, method, where, headers, query), answer(django, method, where, headers, query)
        assert ours == theirs, (method, where, headers, query)
    assert answer(fast, "GET", path, [bob])["status"] == 200


def test_it_refuses_over_the_rate_limit_as_django_did(world: World) -> None:
    study_of(world.alice.org)
    Organization.objects.filter(pk=world.alice.org.pk).update(
        plan=Plan.objects.create(name="One a minute", slug="one", requests_per_minute=1)
    )
    bob = [("Authorization", f"Bearer {world.bob.token}")]
    fast, django = stack(fast=True), stack(fast=False)
    assert answer(fast, "GET", f"/api/v2/studies/{UID}", bob)["status"] == 200
    ours, theirs = (answer(app, "GET", f"/api/v2/studies/{UID}", bob) for app in (fast, django))
    assert ours["status"] == 429
    # The one difference: the consumer's problem states its length; Django's middleware answer did not.
    assert ("content-length", str(len(ours["body"]))) in ours["headers"]
    ours["headers"].remove(("content-length", str(len(ours["body"]))))
    ours["headers"] = [(k, "<s>" if k == "retry-after" else v) for k, v in ours["headers"]]
    theirs["headers"] = [(k, "<s>" if k == "retry-after" else v) for k, v in theirs["headers"]]
    assert ours == theirs
