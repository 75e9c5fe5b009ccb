"""The peer side of the comparison benchmarks: Orthanc, the private network namespace it runs
in, a private Redis, and CPU/memory readings of process trees.

Orthanc 1.10 binds 0.0.0.0 whatever it is told, so a benchmark that starts it first re-executes
itself in a new network namespace with only `lo` up (`reexec_in_netns`): Orthanc, the PrizMed
servers, their workers and the clients then share that namespace's loopback, and nothing outside
can reach any of them (`check_unreachable_from_outside`). PostgreSQL stays reachable through its
Unix socket (sockets are files, not network); the machine's Redis does not, so the benchmark
starts its own (`PrivateRedis`) inside the namespace and stops it at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import live

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
PG_SOCKET_DIR = "/var/run/postgresql"
# libpq and dj-database-url both take a percent-encoded path as the host: the socket directory.
PG_SOCKET_ADMIN_URL = "postgres://postgres@" + PG_SOCKET_DIR.replace("/", "%2F") + "/postgres"
_NETNS_MARK = "PRIZMED_BENCH_NETNS"
_OUTER_PID = "PRIZMED_BENCH_OUTER_PID"


# --- the private network namespace ---------------------------------------------------------


def in_private_netns() -> bool:
    """True in the namespace `reexec_in_netns` made: marked, and `lo` its only interface
    (asked of the kernel: /sys/class/net shows the namespace that mounted /sys, not ours)."""
    return os.environ.get(_NETNS_MARK) == "1" and [name for _, name in socket.if_nameindex()] == ["lo"]


def reexec_in_netns(module: str) -> None:
    """Run `python -m module <same args>` in a new network namespace and exit with its status;
    return at once when already inside one (then bring `lo` up)."""
    if in_private_netns():
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    if os.environ.get(_NETNS_MARK) == "1":
        raise SystemExit("marked as inside the private network namespace, but it has other interfaces")
    if shutil.which("unshare") is None:
        raise SystemExit("`unshare` (util-linux) is needed to run Orthanc in a private network namespace")
    env = {**os.environ, _NETNS_MARK: "1", _OUTER_PID: str(os.getpid())}
    argv = ["unshare", "--net", "--", sys.executable, "-m", module, *sys.argv[1:]]
    raise SystemExit(subprocess.run(argv, env=env).returncode)


def check_unreachable_from_outside(port: int) -> str:
    """Try `port` on the loopback of the namespace this benchmark was started from (via
    `nsenter`); raise if a server answers there, else say what was tried."""
    outer = os.environ.get(_OUTER_PID)
    if outer is None or not Path(f"/proc/{outer}/ns/net").exists():
        return "not checked (outer namespace unknown)"
    probe = (
        "import socket, sys\n"
        "for host in ('127.0.0.1', '::1'):\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=2).close()\n"
        "        print(host); sys.exit(1)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    result = subprocess.run(
        ["nsenter", f"--net=/proc/{outer}/ns/net", sys.executable, "-c", probe], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"port {port} answers outside the private namespace: {result.stdout}{result.stderr}")
    return f"port {port} refused on 127.0.0.1 and ::1 of the outer namespace; inner namespace has only `lo`"


# --- process readings ----------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                tree.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue  # gone meanwhile
    return tree


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def cpu_seconds(pid: int, *, reaped_children: bool = True) -> float:
    """User + system CPU of a process (all threads); with `reaped_children`, plus what its
    children that exited and were waited for used (cutime + cstime)."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of `pid` and every descendant, those already exited (and reaped) included."""
    total = 0.0
    for member in process_tree(pid):
        try:
            total += cpu_seconds(member)
        except OSError:
            continue
    return total


def memory_mb(pids: list[int]) -> tuple[float, float]:
    """Summed RSS and PSS (shared pages split between their users) of `pids`, in MB."""
    rss = pss = 0.0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss"):
                kb = int(value.split()[0]) / 1024
                rss, pss = (rss + kb, pss) if key == "Rss" else (rss, pss + kb)
    return rss, pss


# --- private Redis -------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """A `redis-server` of the benchmark's own (no persistence, its log in a temp dir under
    `parent`), stopped by `stop()`."""

    parent: Path
    port: int = 0
    directory: Path | None = field(default=None, init=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.port = self.port or live.free_port()
        self.parent.mkdir(parents=True, exist_ok=True)
        self.directory = home = Path(tempfile.mkdtemp(prefix="redis-", dir=self.parent)).resolve()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(home), "--logfile", str(home / "redis.log")]  # fmt: skip
        self.proc = subprocess.Popen(argv)
        _wait(lambda: _answers_ping(self.port), "redis-server", self.proc)
        return self

    def stop(self) -> None:
        _terminate(self.proc)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# --- Orthanc -------------------------------------------------------------------------------


def orthanc_config(directory: Path, port: int, *, http_threads: int = 16) -> dict[str, object]:
    """Orthanc's configuration for a benchmark: storage under `directory`, HTTP only (no DICOM
    port), no authentication, DICOMweb at /dicom-web/, files stored as sent (no compression),
    re-sent instances overwritten, no HTTP compression (PrizMed does not compress either)."""
    return {
        "Name": f"bench-{uuid.uuid4().hex[:8]}",
        "StorageDirectory": str(directory / "storage"),
        "IndexDirectory": str(directory / "storage"),
        "StorageCompression": False,
        "HttpPort": port,
        "HttpThreadsCount": http_threads,
        "KeepAlive": True,
        "TcpNoDelay": True,
        "HttpCompressionEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "OverwriteInstances": True,
        "SaveJobs": False,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }


@dataclass
class Orthanc:
    """An Orthanc process with a configuration and storage of its own under `parent` (var/)."""

    parent: Path
    http_threads: int = 16
    port: int = 0
    directory: Path | None = field(default=None, init=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Orthanc:
        if not in_private_netns():
            raise RuntimeError("Orthanc 1.10 binds 0.0.0.0: start it only inside the private network namespace")
        self.parent.mkdir(parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix="orthanc-", dir=self.parent)).resolve()
        self.port = self.port or live.free_port()
        config = self.directory / "orthanc.json"
        config.write_text(json.dumps(orthanc_config(self.directory, self.port, http_threads=self.http_threads)))
        log = (self.directory / "orthanc.log").open("ab")
        self.proc = subprocess.Popen([ORTHANC, str(config)], cwd=self.directory, stdout=log, stderr=log)
        _wait(self._ready, "Orthanc", self.proc)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/system", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def memory_mb(self) -> tuple[float, float]:
        return memory_mb([self.pid])

    def log(self) -> str:
        assert self.directory is not None
        return (self.directory / "orthanc.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop the process and remove its storage."""
        _terminate(self.proc)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def _wait(ready: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start-up ({proc.returncode})")
        if time.monotonic() > deadline:
            _terminate(proc)
            raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
