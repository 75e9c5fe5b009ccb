"""`make run` as a newcomer types it: it migrates, prints an admin key and serves; the key works."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support import live


def test_make_run_serves_and_its_key_works(tmp_path: Path) -> None:
    port = live.free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update(PORT=str(port), PRIZMED_DATA_DIR=str(tmp_path / "var"), PRIZMED_CLOCK_FILE="")
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "-s", "run", f"PORT={port}"], cwd=live.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        key = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and key is None:
            assert proc.poll() is None, log.read_text()
            match = re.search(r"API key \(admin role, organization demo\): (pzm_\w+)", log.read_text())
            key = match.group(1) if match else None
            time.sleep(0.2)
        assert key, log.read_text()
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.2)
        curl = subprocess.run(
            ["curl", "-sf", "-H", f"Authorization: Bearer {key}", f"{base}/api/v2/organization"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert curl.returncode == 0, curl.stderr
        assert '"slug":"demo"' in curl.stdout.replace(" ", "")
        assert (tmp_path / "var" / "prizmed.sqlite3").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
