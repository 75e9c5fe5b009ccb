"""Production hardening (issue 10 item 13): the settings refuse DEBUG and short secret keys with
production services, and PRIZMED_HTTPS / PRIZMED_PROXY_SSL_HEADER give HSTS, HTTPS redirects and
Secure cookies on a live server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import live

LONG_KEY = "k" * 50
POSTGRES = "postgres://postgres@127.0.0.1:5432/prizmed"


def start_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    child = live.child_env(database_url="sqlite://", data_dir=tmp_path, clock_file=tmp_path / "c")
    child.pop("REDIS_URL", None)
    child.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**child, "DJANGO_SETTINGS_MODULE": "prizmed.settings"},
        capture_output=True,
        text=True,
        cwd=live.ROOT,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "1", "DATABASE_URL": POSTGRES, "SECRET_KEY": LONG_KEY}, "DEBUG must be off"),
        ({"DEBUG": "1", "REDIS_URL": "redis://127.0.0.1:6379/4", "SECRET_KEY": LONG_KEY}, "DEBUG must be off"),
        ({"DEBUG": "1", "DATABASE_URL": POSTGRES, "SECRET_KEY": ""}, "DEBUG must be off"),
        ({"DATABASE_URL": POSTGRES, "SECRET_KEY": "x"}, "at least 50 characters"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/4", "SECRET_KEY": "k" * 49}, "at least 50 characters"),
        ({"DATABASE_URL": POSTGRES, "SECRET_KEY": LONG_KEY, "PRIZMED_AUDIT_KEY": ""}, "PRIZMED_AUDIT_KEY must be set"),
        ({"SECRET_KEY": LONG_KEY, "PRIZMED_AUDIT_KEY": "a" * 31}, "at least 32 characters"),
    ],
)
def test_it_refuses_debug_and_short_keys_with_production_services(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    result = start_settings(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_URL": POSTGRES, "SECRET_KEY": LONG_KEY},
        # `make run`'s generated key: secrets.token_urlsafe(50), 67 characters.
        {"REDIS_URL": "redis://127.0.0.1:6379/4", "SECRET_KEY": "A" * 67},
        {"DEBUG": "1", "SECRET_KEY": ""},  # embedded development mode keeps working
    ],
)
def test_it_starts_with_a_sound_configuration(env: dict[str, str], tmp_path: Path) -> None:
    result = start_settings(tmp_path, **env)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def https_server(child_env: dict[str, str], run_dir: Path) -> object:
    env = {**child_env, "PRIZMED_HTTPS": "1", "PRIZMED_PROXY_SSL_HEADER": "X-Proxy-Proto"}
    srv = live.server(env, run_dir)
    yield srv
    srv.stop()


def test_it_redirects_plain_http_and_sends_hsts_over_https(https_server: live.Server) -> None:
    with httpx.Client(base_url=https_server.url, timeout=30) as client:
        plain = client.get("/admin/login/")
        assert plain.status_code == 301
        assert plain.headers["location"].startswith("https://")
        assert "strict-transport-security" not in plain.headers

        # The trusted proxy's header marks the request as HTTPS: served, with HSTS and Secure cookies.
        secure = client.get("/admin/login/", headers={"X-Proxy-Proto": "https"})
        assert secure.status_code == 200
        assert secure.headers["strict-transport-security"] == "max-age=31536000"
        cookie = secure.headers["set-cookie"]
        assert "csrftoken=" in cookie
        assert "Secure" in cookie

        # Health checks from the load balancer stay on plain HTTP.
        assert client.get("/healthz").status_code == 200


def test_it_leaves_http_alone_without_prizmed_https(server: live.Server) -> None:
    response = httpx.get(f"{server.url}/admin/login/", headers={"X-Proxy-Proto": "https"}, timeout=30)
    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers
    assert "Secure" not in response.headers["set-cookie"]
