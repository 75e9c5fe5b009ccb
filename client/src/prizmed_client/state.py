"""The local resume state: which request id or stream id each file was sent under.

One JSON-lines file per server URL in the state directory (``PRIZMED_STATE_DIR``, default
``$XDG_STATE_HOME/prizmed`` or ``~/.local/state/prizmed``). A line is appended and fsync'd
*before* the request it names is sent, so whatever kills the client, a re-run knows every id
the server may have seen and asks the server (``GET /dicom/uploads/{id}``,
``GET /dicom/streams/{id}``) what it holds. The file says what was *tried*; the server says
what *happened*. A torn last line (killed mid-write) is ignored.

Files are known by ``FileKey``: absolute path, size and modification time in nanoseconds, plus
the SHA-256 of the content for files small enough to be read whole anyway (batched ones). A file
changed since it was sent has another key and is sent again.

An exclusive ``flock`` on ``<file>.lock`` keeps two uploads from sharing the state; the log is
compacted (one line per file) through a temporary file and a rename, never truncated in place.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


class StateLocked(RuntimeError):
    """Another ``prizmed upload`` holds this state file."""


@dataclass(frozen=True, slots=True)
class FileKey:
    """A file's identity for resuming: absolute path, size (bytes), mtime (ns), optional SHA-256 hex."""

    path: str
    size: int
    mtime_ns: int
    sha256: str | None = None

    @classmethod
    def of(cls, path: Path, *, sha256: str | None = None) -> FileKey:
        """The key of ``path`` as it is now on disk."""
        st = path.stat()
        return cls(str(path.resolve()), st.st_size, st.st_mtime_ns, sha256)

    def text(self) -> str:
        """The key as one string (the state file's dictionary key)."""
        return f"{self.path}|{self.size}|{self.mtime_ns}|{self.sha256 or ''}"


@dataclass
class StreamRecord:
    """A chunked stream begun for a file: its id and the chunk size it was cut with."""

    stream_id: str
    chunk_bytes: int


def file_sha256(path: Path) -> str:
    """SHA-256 hex of a file's content, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while piece := fh.read(1024 * 1024):
            digest.update(piece)
    return digest.hexdigest()


def state_path(state_dir: Path, server_url: str) -> Path:
    """The state file of one server: ``upload-<16 hex of SHA-256(url)>.jsonl``."""
    name = hashlib.sha256(server_url.rstrip("/").encode()).hexdigest()[:16]
    return state_dir / f"upload-{name}.jsonl"


class ResumeState:
    """The write-ahead log of one server's uploads. Use as a context manager (it locks the file).

    In memory: ``requests[request id]`` = the file keys of that request in body order (a
    rejection's ``position`` indexes it), ``sent[file key]`` = the last request id it went in,
    ``streams[file key] = StreamRecord``; each ``record_*`` appends a line and fsyncs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: dict[str, list[str]] = {}
        self.sent: dict[str, str] = {}
        self.streams: dict[str, StreamRecord] = {}
        self._fh: IO[str] | None = None
        self._lock: IO[bytes] | None = None

    def __enter__(self) -> ResumeState:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock").open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise StateLocked(f"another upload is using {self.path}") from None
        self._lock = lock
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    self._apply(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a kill mid-write
        self._compact()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    def forget(self) -> None:
        """Drop everything recorded (``prizmed upload --fresh``)."""
        self.requests.clear()
        self.sent.clear()
        self.streams.clear()
        self._compact()

    def record_request(self, request_id: str, keys: list[FileKey]) -> None:
        """Before sending: these files go in the request with this id."""
        self._append({"t": "request", "request_id": request_id, "files": [k.text() for k in keys]})

    def record_stream(self, key: FileKey, stream: StreamRecord) -> None:
        """Before the first chunk: this file goes as this stream."""
        self._append({"t": "stream", "file": key.text(), "stream_id": stream.stream_id, "chunk": stream.chunk_bytes})

    def record_chunk(self, stream_id: str, seq: int, request_id: str) -> None:
        """Before sending a chunk: its request id (kept in the log for tracing, not for resuming)."""
        self._append({"t": "chunk", "stream_id": stream_id, "seq": seq, "request_id": request_id})

    def _apply(self, entry: dict[str, Any]) -> None:
        if entry["t"] == "request":
            self.requests[entry["request_id"]] = list(entry["files"])
            for key in entry["files"]:
                self.sent[key] = entry["request_id"]
        elif entry["t"] == "stream":
            self.streams[entry["file"]] = StreamRecord(entry["stream_id"], int(entry["chunk"]))

    def _append(self, entry: dict[str, Any]) -> None:
        assert self._fh is not None, "use ResumeState as a context manager"
        self._apply(entry)
        self._fh.write(json.dumps({**entry, "at": round(time.time(), 3)}, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _compact(self) -> None:
        """Rewrite the log as one line per request and stream (chunk lines dropped), atomically."""
        live = set(self.sent.values())  # requests no file points at any more are forgotten
        self.requests = {r: keys for r, keys in self.requests.items() if r in live}
        lines = [json.dumps({"t": "request", "request_id": r, "files": keys}) for r, keys in self.requests.items()]
        lines += [
            json.dumps({"t": "stream", "file": key, "stream_id": s.stream_id, "chunk": s.chunk_bytes})
            for key, s in self.streams.items()
        ]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())
        if self._fh is not None:
            self._fh.close()
        tmp.replace(self.path)
        self._fh = self.path.open("a", encoding="utf-8")
