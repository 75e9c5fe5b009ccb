from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.auth import key_authenticate
from accounts.keys import KEY_LEN, key_generate, key_is_well_formed
from accounts.models import APIKey
from tests.support import live
from tests.support.world import World


def test_it_makes_keys_a_scanner_can_find_and_a_typo_cannot_pass() -> None:
    new = key_generate()
    assert new.plaintext.startswith("pzm_") and len(new.plaintext) == KEY_LEN
    assert key_is_well_formed(new.plaintext)
    typo = new.plaintext[:10] + ("x" if new.plaintext[10] != "x" else "y") + new.plaintext[11:]
    assert not key_is_well_formed(typo)
    assert new.prefix == new.plaintext[:12]
    assert new.plaintext not in (new.digest, new.prefix)


def test_it_refuses_a_malformed_key_without_a_query(world: World, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        assert key_authenticate("Bearer pzm_" + "a" * 38) is None


def test_issue_key_prints_the_key_alone(world: World) -> None:
    out = io.StringIO()
    call_command("issue_key", org="hooli", plan="enterprise", role="admin", name="ci", stdout=out)
    token = out.getvalue().strip()
    assert key_is_well_formed(token)
    key = key_authenticate(f"Bearer {token}")
    assert key is not None and key.role == "admin" and key.organization.plan.slug == "enterprise"


def database_dump() -> str:
    """What an attacker with the database gets: pg_dump on PostgreSQL, the file on SQLite."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
        argv = ["pg_dump", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"], db["NAME"]]
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    files = [Path(db["NAME"]), Path(f"{db['NAME']}-wal")]  # the write-ahead log holds recent rows
    return "".join(f.read_bytes().decode("latin-1") for f in files if f.exists())


def test_a_database_dump_contains_no_usable_key(world: World) -> None:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    dump = out.getvalue() + database_dump()
    for party in (world.alice, world.bob, world.carol):
        assert party.token not in dump
        assert party.token[12:] not in dump  # nor its secret part
    for key in APIKey.objects.all():  # what the dump does hold is refused as a key
        for stored in (key.digest, key.prefix):
            assert key_authenticate(f"Bearer {stored}") is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "0", "SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"DEBUG": "maybe"}, "is not a boolean"),
        ({"DEBUG": "1", "DB_CONN_MAX_AGE": "forever"}, "is not an integer"),
    ],
)
def test_settings_refuse_to_start_on_bad_configuration(env: dict[str, str], message: str, tmp_path) -> None:
    child = live.child_env(database_url="sqlite://", data_dir=tmp_path, clock_file=tmp_path / "c", **env)
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**child, "DJANGO_SETTINGS_MODULE": "prizmed.settings"},
        capture_output=True,
        text=True,
        cwd=live.ROOT,
    )
    assert result.returncode != 0
    assert message in result.stderr
