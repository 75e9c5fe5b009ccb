"""Issue 10 item 8: storage full → 507 problem+json, nothing half-written.

A live server stores objects on a 2 MiB tmpfs mounted here; an upload larger than what is
free fills it. The answer is 507, the upload's objects, temp files and row are gone, and once
space is free again uploads are accepted.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from studies.models import Upload
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import wait_for
from tests.support.world import World
from tests.test_auth import assert_problem

pytestmark = [pytest.mark.services, pytest.mark.faults]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "objects"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"a tmpfs is needed for the disk-full test (run as root): {done.stderr.decode()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_full_disk_is_507_and_leaves_nothing(
    child_env: dict[str, str], run_dir: Path, small_disk: Path, world: World
) -> None:
    server = live.server({**child_env, "PRIZMED_STORAGE_DIR": str(small_disk)}, run_dir)
    try:
        url = f"{server.url}/api/v2/dicom/stream"
        request_id = str(uuid.uuid4())
        headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}

        response = httpx.post(url, content=make_instance(pixel_bytes=4 * 1024 * 1024), headers=headers, timeout=60)

        assert_problem(response, 507)
        assert response.json()["type"] == "/problems/storage-full"
        wait_for(lambda: files(small_disk) == [])  # neither the object nor its temp file
        assert not Upload.objects.filter(pk=request_id).exists()

        small = httpx.post(url, content=make_instance(), headers=headers, timeout=60)  # space again, same id
        assert small.status_code == 202, small.text
    finally:
        server.stop()
