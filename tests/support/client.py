"""Helpers of the client tests: the `prizmed` command run as a user runs it, folders to upload,
the server's own Part-10 check as the oracle of what is DICOM, and a clock that ticks."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom.data

from dicom.part10 import NotDicom
from tests.support.part10 import meta_from_prefix
from tests.support.world import Clock

PRIZMED = str(Path(sys.executable).parent / "prizmed")  # the console script `pip install ./client` made
MIB = 1024 * 1024
# The large multi-frame instance of the upload tests. The issue asks for 300 MB; `make test`
# uses 80 MiB (still a chunked stream, over the 64 MiB threshold) so the suite stays quick on
# two cores, and PRIZMED_TEST_BIG_MB=300 runs the full size (docs/client.md).
BIG_MB = int(os.environ.get("PRIZMED_TEST_BIG_MB", "80"))


def cli_env(url: str, token: str, state_dir: Path, **extra: str) -> dict[str, str]:
    """A user's environment: PATH, HOME, the server and key; nothing of the test's Django."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update(PRIZMED_URL=url, PRIZMED_API_KEY=token, PRIZMED_STATE_DIR=str(state_dir), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class Run:
    code: int
    out: str
    err: str

    def number(self, label: str) -> int:
        """The first integer after ``label`` in the summary, e.g. ``number("Bytes sent:")``."""
        match = re.search(re.escape(label) + r"\s*([\d,]+)", self.out + self.err)
        assert match, f"{label!r} not in output:\n{self.out}\n{self.err}"
        return int(match.group(1).replace(",", ""))


def prizmed(env: dict[str, str], *args: str, timeout: float = 600) -> Run:
    """Run `prizmed ARGS` to completion."""
    done = subprocess.run([PRIZMED, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr)


class Background:
    """`prizmed ARGS` running, its stdout lines readable as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [PRIZMED, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_line(self, pattern: str, timeout: float = 60) -> str:
        """The first stdout line so far or to come matching ``pattern`` (bounded wait)."""
        for line in self.seen:
            if re.search(pattern, line):
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r}; got:\n{''.join(self.seen)}")

    def interrupt(self, timeout: float = 30) -> Run:
        """Ctrl-C (SIGINT), as a user would; the run's exit code and output."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=timeout)
        return Run(self.proc.returncode, "".join(self.seen) + out, err)


def pydicom_folder(dest: Path) -> Path:
    """A copy of pydicom's own test files (Part-10 and not, nested folders, a .gz, JSON)."""
    source = Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent  # type: ignore[arg-type]
    shutil.copytree(source, dest)
    return dest


def server_accepts(path: Path) -> bool:
    """The server's own early check (dicom/part10.py), the oracle of what the client should send."""
    with path.open("rb") as fh:
        prefix = fh.read(132 + 64 * 1024 + 16)
    try:
        return meta_from_prefix(prefix, at_eof=True) is not None
    except NotDicom:
        return False


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def summary(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


class TickingClock:
    """Moves the servers' pinned rate-limit clock (PRIZMED_CLOCK_FILE) forward with real time,
    so windows open and close as they would in production while the client paces by its own
    clock; a context manager."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TickingClock:
        self._start_value, self._start = self.clock.now(), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        # Written aside and renamed: the servers read the file on every request, and a file
        # rewritten in place can be read empty.
        temp = self.clock.path.with_name(self.clock.path.name + ".tick")
        while not self._stop.wait(0.05):
            temp.write_text(repr(self._start_value + time.monotonic() - self._start))
            os.replace(temp, self.clock.path)


def access_log(server_log: Path, offset: int) -> Iterator[dict[str, Any]]:
    """The server's JSON access-log lines (prizmed.access) written after ``offset``."""
    with server_log.open("rb") as fh:
        fh.seek(offset)
        for raw in fh:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("logger") == "prizmed.access":
                yield line
