"""The upload progress bar as a person sees it: `prizmed upload` in a real terminal (tmux),
the screen read with capture-pane while the bytes go out."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import live
from tests.support.client import MIB, PRIZMED, cli_env
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import set_plan
from tests.support.world import Clock, World

# A bar, bytes done of the total, speed, instances, and the ETA: what rich draws mid-upload.
MID_UPLOAD = re.compile(r"upload\s+━+\S*\s+[\d.]+/[\d.]+ MiB\s+[\d.]+ [kM]B/s\s+0/1 instances\s+ETA \d:\d\d:\d\d")


@pytest.fixture
def tmux(tmp_path: Path):
    if shutil.which("tmux") is None:
        if os.environ.get("PRIZMED_REQUIRE_SERVICES") == "1":
            pytest.fail("tmux is missing (.ci/run installs it)")
        pytest.skip("tmux is not installed")
    socket = f"prizmed-test-{os.getpid()}"
    yield ["tmux", "-L", socket]
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)


def screen(tmux: list[str]) -> str:
    return subprocess.run([*tmux, "capture-pane", "-p", "-t", "up"], capture_output=True, text=True).stdout


def test_it_draws_a_progress_bar_with_an_eta_in_a_terminal(
    server: live.Server, world: World, clock: Clock, indexer, tmux: list[str], tmp_path: Path
) -> None:
    set_plan(world.bob.org, bandwidth_bps=40_000_000)  # 5 MB/s: the 24 MiB take ~5 s to send
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "one.dcm").write_bytes(make_instance(pixel_bytes=24 * MIB))
    env = cli_env(server.url, world.bob.token, tmp_path / "state")
    command = f"{PRIZMED} upload {folder}; echo EXIT=$?; sleep 600"
    subprocess.run([*tmux, "new-session", "-d", "-s", "up", "-x", "160", "-y", "30", command], env=env, check=True)

    frames: list[str] = []
    deadline = time.monotonic() + 120
    while "EXIT=" not in (frames[-1] if frames else ""):
        assert time.monotonic() < deadline, "\n---\n".join(frames[-3:])
        frames.append(screen(tmux))
        time.sleep(0.1)

    mid = [f for f in frames if MID_UPLOAD.search(f)]
    assert mid, "no frame showed the bar mid-upload:\n" + "\n---\n".join(frames[-5:])
    final = frames[-1]
    assert "EXIT=0" in final and "Bytes sent: " in final
    assert re.search(r"upload\s+━+\s+24\.0/24\.0 MiB", final)  # the bar stays, full, above the summary
