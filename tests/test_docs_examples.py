"""The copy-pasteable examples of docs/ingest.md and docs/records.md, run as written against a
live server (every fenced block after a `<!-- docs-example -->` marker), with BASE, KEY and
IMAGE set as README's first hour sets them (issue 14)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file

from tests.support import dicomfactory as dcm
from tests.support import live
from tests.support.world import World

BLOCK = re.compile(r"<!-- docs-example -->\n```(sh|python)\n(.*?)```", re.S)
EXAMPLES = {name: BLOCK.findall((live.ROOT / "docs" / name).read_text()) for name in ("ingest.md", "records.md")}


def _env(server: live.Server, world: World) -> dict[str, str]:
    image = get_testdata_file("CT_small.dcm")
    assert image is not None
    return {**os.environ, "BASE": server.url, "KEY": world.bob.token, "IMAGE": str(image)}


def _argv(language: str, code: str) -> list[str]:
    return ["bash", "-euo", "pipefail", "-c", code] if language == "sh" else [sys.executable, "-c", code]


def test_the_docs_keep_their_examples() -> None:
    assert [language for language, _ in EXAMPLES["ingest.md"]] == ["sh", "python"]
    assert [language for language, _ in EXAMPLES["records.md"]] == ["sh", "python"]


@pytest.mark.parametrize("index", range(2))
def test_the_chunked_upload_examples_run_as_written(
    server: live.Server, world: World, clock: object, indexer: object, index: int, tmp_path: Path
) -> None:
    language, code = EXAMPLES["ingest.md"][index]
    done = subprocess.run(_argv(language, code), cwd=tmp_path, env=_env(server, world), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    if language == "sh":
        assert '"stream_state":"complete"' in done.stdout.replace(" ", "")
        assert '"state":"complete"' in done.stdout.replace(" ", "").splitlines()[-1]
    else:
        assert done.stdout.splitlines()[-1].startswith("done 1 [")


def test_the_bundle_example_runs_as_written(server: live.Server, world: World, clock: object, tmp_path: Path) -> None:
    language, code = EXAMPLES["records.md"][0]
    done = subprocess.run(_argv(language, code), cwd=tmp_path, env=_env(server, world), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "x-record-seq:" in done.stdout.lower() and '"resourceType":"Bundle"' in done.stdout.replace(" ", "")


def test_the_sse_example_resumes_after_the_last_event_it_saw(
    server: live.Server, world: World, clock: object, indexer: object, tmp_path: Path
) -> None:
    language, code = EXAMPLES["records.md"][1]
    proc = subprocess.Popen(_argv(language, code), cwd=tmp_path, env=_env(server, world), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # the snapshot, up to snapshot-end
            seen.append(line)
            if line.startswith("snapshot-end"):
                break
        assert seen and seen[-1].startswith("snapshot-end"), seen
        position = int(seen[-1].split()[1])
        # A change after that position: the example, reconnected with Last-Event-ID, gets it.
        upload = httpx.post(
            f"{server.url}/api/v2/dicom/stream", content=dcm.make_instance(patient_id="DOCS-SSE"),
            headers={**world.bob.headers, "Content-Type": "application/dicom"}, timeout=60,
        )  # fmt: skip
        assert upload.status_code == 202, upload.text
        rest = proc.communicate(timeout=120)[0]
        assert proc.returncode == 0, "".join(seen) + rest
        after = rest.strip().splitlines()[-1].split()
        assert after[:2] == ["after", str(position)] and int(after[-1]) > position, rest
    finally:
        proc.kill()
