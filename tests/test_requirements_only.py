"""Production runs from requirements.txt alone (issue 19).

A virtualenv gets requirements.txt and nothing else (no dev requirements, which happened to bring
`packaging`, without which kombu's Redis transport cannot start a worker); the real Celery worker,
uvicorn and Celery beat start from it; an upload through that uvicorn is indexed by that worker.
The Docker image installs the same file.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from studies.models import UploadState
from tests.support import dicomfactory as dcm
from tests.support import live
from tests.support.indexing import wait_for, wait_indexed
from tests.support.world import World

REQUIREMENTS = live.ROOT / "requirements.txt"


def venv_from_requirements(where: Path) -> str:
    """A virtualenv with requirements.txt installed, nothing more; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = str(where / "bin" / "python")
    pip = subprocess.run(
        [python, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], capture_output=True, text=True, timeout=900
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    return python


def test_the_docker_image_installs_requirements_txt_alone() -> None:
    installs = [line for line in (live.ROOT / "Dockerfile").read_text().splitlines() if "pip install" in line]
    assert installs == ["RUN pip install --no-cache-dir -r requirements.txt"]


@pytest.mark.services
@pytest.mark.venv
def test_worker_web_server_and_beat_run_from_requirements_txt_alone(
    world: World, child_env: dict[str, str], run_dir: Path, tmp_path: Path
) -> None:
    python = venv_from_requirements(tmp_path / "venv")
    # Nothing of the dev requirements is in there.
    assert subprocess.run([python, "-c", "import pytest"], capture_output=True).returncode != 0

    worker = live.worker_start(child_env, run_dir, python=python)
    server = live.server(child_env, run_dir, python=python)
    beat = live.Process(
        argv=[python, "-m", "celery", "-A", "prizmed", "beat", "-l", "INFO", "-s", str(tmp_path / "beat-schedule")],
        env=child_env,
        log_path=run_dir / f"beat-{uuid.uuid4().hex[:8]}.log",
    )
    beat.start()
    try:
        wait_for(lambda: "beat: Starting..." in beat.log(), timeout=60, what="beat to start")
        request_id = str(uuid.uuid4())
        response = httpx.post(
            f"{server.url}/api/v2/dicom/stream",
            content=dcm.make_instance(patient_id="REQ-ONLY"),
            headers={**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        upload = wait_indexed(request_id, timeout=120)
        assert upload.state == UploadState.DONE and upload.instances_indexed == 1, upload.error
        assert beat.proc is not None and beat.proc.poll() is None, beat.log()[-3000:]
    finally:
        for process in (beat, server, worker):
            process.stop()
