"""A refused WebSocket handshake is an HTTP problem (401, 400, 404) and the client's error:
logged at INFO, never as a server ERROR or a routing exception (issue 14)."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support import live
from tests.support.ingest_support import wait_for
from tests.support.world import World


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/ws/v2/dicom/stream", {}, 401),
        ("/ws/v2/dicom/stream", {"X-Request-Id": "not-a-uuid"}, 400),
        ("/ws/v2/no/such/route", {}, 404),
        ("/api/v2/organization", {}, 404),
    ],
)
def test_a_refused_handshake_is_a_problem_logged_at_info(
    server: live.Server, world: World, path: str, headers: dict[str, str], status: int
) -> None:
    before = len(server.log())
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{server.port}{path}", additional_headers=headers, open_timeout=30).close()
    response = refused.value.response
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.body)["status"] == status
    # The server writes its lines once the handler returns, just after the client has its answer.
    wait_for(lambda: "WebSocket handshake refused with an HTTP response" in server.log()[before:])
    logged = server.log()[before:]
    assert "ERROR" not in logged and "Traceback" not in logged, logged
