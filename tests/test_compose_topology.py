"""The production topology of docker-compose.yml, run as the processes it describes (issue 15).

The test machines have no container engine, so this takes what docker-compose.yml and the
Dockerfile say — each service's command, the environment every PrizMed container shares, one
data directory per container — and runs those commands from this checkout, with what Docker
would provide mapped to this machine: the containers' host names to the test's PostgreSQL, Redis
and S3 server (moto's, standing in for MinIO), the image's `python`, `uvicorn` and `celery` to this
virtualenv's. What is checked is that the file is a working deployment: the migrate job, as the
database owner, migrates and grants the app role; two web containers and a worker, running as
that role with no disk in common, and beat, start; an upload through one web container is indexed
by the worker and read back, byte for byte, through the other.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from django.conf import settings
from django.db import connection

from studies.models import Instance
from tests.support import live, s3
from tests.support.dicomfactory import make_study
from tests.support.dicomweb_support import as_stored, read_bytes
from tests.support.indexing import http_upload, wait_indexed
from tests.support.world import World

pytestmark = pytest.mark.services

COMPOSE = yaml.safe_load((live.ROOT / "docker-compose.yml").read_text())
BIN = str(Path(sys.executable).parent)  # the image's PATH: python, uvicorn and celery
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(value: str, dotenv: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` (an error when unset)."""

    def one(match: re.Match[str]) -> str:
        name, kind, text = match.groups()
        if dotenv.get(name):
            return dotenv[name]
        if kind == "?":
            raise AssertionError(f"docker-compose.yml requires {name}: {text}")
        return text or ""

    return _VARIABLE.sub(one, value)


class Hosts:
    """What the containers' network and names are on this machine."""

    def __init__(self, moto_port: int, app_role: str) -> None:
        db = settings.DATABASES["default"]
        redis = urlsplit(settings.REDIS_URL)
        self.app_role = app_role
        self.netlocs = {
            "postgres:5432": f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}",
            "redis:6379": redis.netloc,
            "minio:9000": f"127.0.0.1:{moto_port}",
        }
        self.paths = {"/prizmed": f"/{db['NAME']}", "/0": redis.path}  # the database, the Redis db
        self.users = {"prizmed_app": app_role, "prizmed": db["USER"]}  # the owner, the app role

    def url(self, value: str) -> str:
        """A URL of the compose file, pointed at this machine's service."""
        parts = urlsplit(value)
        if parts.hostname is None or f"{parts.hostname}:{parts.port}" not in self.netlocs:
            return value
        netloc = self.netlocs[f"{parts.hostname}:{parts.port}"]
        if parts.username:
            netloc = f"{self.users.get(parts.username, parts.username)}:{parts.password or ''}@{netloc}"
        return parts._replace(netloc=netloc, path=self.paths.get(parts.path, parts.path)).geturl()

    def command(self, argv: list[str]) -> list[str]:
        return [arg.replace("prizmed_app", self.app_role) for arg in argv]


def image_env() -> dict[str, str]:
    """The Dockerfile's ENV lines."""
    lines = (live.ROOT / "Dockerfile").read_text().splitlines()
    pairs = [pair.split("=", 1) for line in lines if line.startswith("ENV ") for pair in line.split()[1:]]
    return dict(pairs)


def container_env(service: dict[str, Any], dotenv: dict[str, str], hosts: Hosts, data_dir: Path) -> dict[str, str]:
    """A container's environment: the service's, interpolated and mapped, on the image's."""
    env = {**image_env(), "PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(data_dir)}
    assert env["PRIZMED_DATA_DIR"] == "/data"
    env["PRIZMED_DATA_DIR"] = str(data_dir)  # each container's own /data
    for name, value in service["environment"].items():
        env[name] = hosts.url(interpolate(str(value), dotenv))
    return env


def dockerfile_cmd() -> list[str]:
    """The image's CMD (what `web` runs: it has no command of its own)."""
    [line] = [line for line in (live.ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    argv: list[str] = yaml.safe_load(line.removeprefix("CMD "))  # a JSON array is YAML too
    return argv


def published(argv: list[str], port: int) -> list[str]:
    """The web command on a free host port of loopback (compose publishes 8000 as 8000-8009)."""
    argv = list(argv)
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    return argv


def start(name: str, argv: list[str], env: dict[str, str], run_dir: Path) -> live.Process:
    proc = live.Process(argv=argv, env=env, log_path=run_dir / f"compose-{name}-{live.free_port()}.log")
    env_dir = Path(env["PRIZMED_DATA_DIR"])
    env_dir.mkdir(parents=True, exist_ok=True)
    proc.start()
    return proc


def wait_log(proc: live.Process, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.log():
        assert proc.proc is not None and proc.proc.poll() is None, proc.log()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in:\n{proc.log()[-3000:]}"
        time.sleep(0.2)


def wait_ready(url: str, proc: live.Process) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.proc is not None and proc.proc.poll() is None, proc.log()[-3000:]
        assert time.monotonic() < deadline, proc.log()[-3000:]
        time.sleep(0.3)


@pytest.fixture
def app_role() -> Iterator[str]:
    role = f"prizmed_app_{connection.settings_dict['NAME']}".lower()[:63]  # roles are cluster-wide
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = live.free_port()
    server = s3.moto_server(port, tmp_path_factory.mktemp("moto-compose"))
    yield port
    server.stop()


def test_the_compose_files_topology_runs_and_serves_across_containers(
    world: World, run_dir: Path, app_role: str, moto: int
) -> None:
    services = COMPOSE["services"]
    hosts = Hosts(moto, app_role)
    ports = live.free_port(), live.free_port()
    dotenv = {  # the .env file the compose file asks for
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PRIZMED_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PRIZMED_APP_DB_PASSWORD": secrets.token_urlsafe(16),
        "PRIZMED_AUDIT_KEY": os.environ["PRIZMED_AUDIT_KEY"],  # the suite's: its audit checks still hold
        "MINIO_ROOT_PASSWORD": secrets.token_urlsafe(16),
    }
    # What the `bucket` job does with MinIO's client, done with the AWS SDK on moto.
    s3.bucket_create(f"http://127.0.0.1:{moto}", urlsplit(services["web"]["environment"]["PRIZMED_STORAGE_URL"]).netloc)

    def env(name: str) -> dict[str, str]:
        return container_env(services[name.split("-")[0]], dotenv, hosts, run_dir / f"compose-{name}")

    migrate_env = env("migrate")
    assert migrate_env["DATABASE_URL"].startswith(f"postgres://{hosts.users['prizmed']}:")  # the owner
    migrate = subprocess.run(hosts.command(services["migrate"]["command"]), env=migrate_env, cwd=live.ROOT,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-3000:]

    web_env = env("web-a")
    assert urlsplit(web_env["DATABASE_URL"]).username == app_role  # the web runs as the app role
    assert "volumes" not in services["web"] and "volumes" not in services["worker"]  # no disk in common
    procs = [
        start("web-a", published(dockerfile_cmd(), ports[0]), web_env, run_dir),
        start("web-b", published(dockerfile_cmd(), ports[1]), env("web-b"), run_dir),
        start("worker", services["worker"]["command"], env("worker"), run_dir),
        start("beat", services["beat"]["command"], env("beat"), run_dir),
    ]
    try:
        for port, proc in zip(ports, procs[:2], strict=True):
            wait_ready(f"http://127.0.0.1:{port}", proc)
        # Both log at WARNING (the compose file sets no level): their banners show they started.
        wait_log(procs[2], "[queues]")
        wait_log(procs[3], "beat v")

        instances = make_study(n_series=1, per_series=3, patient_id="COMPOSE-1")
        with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}/api/v2", timeout=60) as web_a:
            upload = wait_indexed(http_upload(web_a, world.bob, instances))
        assert (upload.instances_indexed, upload.instances_rejected) == (3, 0)
        study_uid = Instance.objects.get(sop_uid=str(read_bytes(instances[0]).SOPInstanceUID)).series.study.study_uid
        with httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}/api/v2", timeout=60) as web_b:
            whole = web_b.get(f"/dicomweb/studies/{study_uid}", headers=world.bob.headers)
        assert whole.status_code == 200 and all(as_stored(i) in whole.content for i in instances)
        # Every byte went to the object store: no container's data directory holds an object.
        assert not [p for p in run_dir.glob("compose-*/objects/**/*") if p.is_file()]
    finally:
        for proc in procs:
            proc.stop()
