"""The S3-compatible backend of ``Storage`` (AWS S3, MinIO, Ceph RGW, GCS's XML API), on boto3.

Objects live under ``s3://bucket/prefix/<key>``. A writer sends a small object with one PUT at
``commit``; a larger one goes up as a multipart upload in parts while it still arrives (one part
in flight while the next fills), completed at ``commit`` and aborted on any failure, so memory
per object stays near two parts and a reader never sees a torn object. Readers fetch ranges on
demand (a header read touches the first kilobytes only). An acknowledged PUT or completed upload
is durable in the store; ``commit(durable=False)`` (the instances of a multipart body) sends a
small object's PUT in the background, a few at a time, and ``sync`` waits for them.
Requests have bounded timeouts and retries with backoff (botocore's standard mode); the store
still unreachable after them is ``StorageUnavailable`` (503).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from studies.objects.storage import KEY_RE, Extent, Piece, Storage, StorageUnavailable, check_key

log = logging.getLogger("prizmed.studies")

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part but the last (UploadPart)
MAX_COPY_PART_BYTES = 5 * 1024**3  # S3's largest part, and so the largest range one UploadPartCopy copies
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
READ_BUFFER_BYTES = 64 * 1024  # a header is parsed from this much, in one ranged GET
FIRST_RANGE_BYTES = 256 * 1024  # the first GET of a reader asks this much at least ...
MAX_RANGE_BYTES = 64 * 1024 * 1024  # ... and each sequential one four times more, up to this
PUTS_IN_FLIGHT = 4  # background PUTs of one upload's instances at once (see put_later)
DRAIN_BYTES = 256 * 1024  # a GET left with at most this much unread is read out, not cut
_MISSING = {"404", "NoSuchKey", "NotFound"}

_uploaders = ThreadPoolExecutor(max_workers=8, thread_name_prefix="prizmed-s3-part")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class S3Location:
    """``s3://bucket/prefix``: the bucket and the key prefix ("" or ending in "/")."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Raise ValueError unless ``url`` is ``s3://bucket`` or ``s3://bucket/prefix``."""
        parts = urlsplit(url)
        prefix = parts.path.strip("/")
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"{url!r} is not s3://bucket[/prefix]")
        if prefix and not KEY_RE.fullmatch(prefix):
            raise ValueError("the prefix of an s3:// URL must be characters of [A-Za-z0-9._/-]")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")


def s3_client(*, timeout: float, max_attempts: int, path_style: bool, endpoint_url: str | None = None) -> Any:
    """A thread-safe boto3 S3 client: endpoint (unless ``endpoint_url``), region and credentials
    from the standard AWS environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...),
    bounded timeouts, and ``max_attempts`` tries per request with exponential backoff."""
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=32,
        s3={"addressing_style": "path" if path_style else "auto"},
        # Checksums only where the API requires them (DeleteObjects): the default since boto3
        # 1.36 (a CRC32 on every PUT and part) is refused by some S3-compatible stores and costs
        # CPU; TLS and the stores' own MD5 ETags cover transfer integrity.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", config=config, endpoint_url=endpoint_url)


@contextmanager
def _store_errors(what: str) -> Iterator[None]:
    """Translate S3 failures: a missing key raises FileNotFoundError, the store unreachable or
    failing (after botocore's retries) StorageUnavailable; other refusals (403, 400) stay
    ClientError."""
    try:
        yield
    except StorageUnavailable:
        raise  # translated already (an OSError too, which the last clause would wrap again)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in _MISSING:
            raise FileNotFoundError(f"{what}: no such object") from None
        if status >= 500 or code in ("SlowDown", "RequestTimeout"):
            log.warning("object store failed: %s: %s", what, code)
            raise StorageUnavailable() from exc
        raise
    except (BotoCoreError, Urllib3Error, OSError) as exc:
        log.warning("object store unreachable: %s: %s", what, exc)
        raise StorageUnavailable() from exc


def _call(what: str, request: Callable[..., T], **params: Any) -> T:
    """One S3 request, its failures translated by ``_store_errors``."""
    with _store_errors(what):
        return request(**params)


class S3Writer:
    """An object going up: buffered to one PUT while small, a multipart upload once it passes a
    part (see the module docstring). Not thread-safe: one writer, one thread at a time."""

    def __init__(self, store: S3Storage, key: str) -> None:
        self._store = store
        self._key = store.object_name(key)
        self._pieces: list[bytes] = []
        self._pending = 0  # bytes in _pieces
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._inflight: Future[dict[str, Any]] | None = None
        self._open = True
        self.size = 0

    def write(self, data: bytes) -> None:
        if not self._open:
            raise ValueError("writer is already committed or aborted")
        if self._pending >= self._store.part_bytes:
            self._send_part()  # only once more bytes come: an object of exactly one part is one PUT
        self._pieces.append(bytes(data))
        self._pending += len(data)
        self.size += len(data)

    def _send_part(self) -> None:
        """Send what is buffered as the next part, in the background; wait for the one before
        (so at most one part is in flight and memory stays near two parts)."""
        body = b"".join(self._pieces)
        self._pieces, self._pending = [], 0
        self._wait_inflight()
        client, bucket = self._store.client, self._store.location.bucket
        if self._upload_id is None:
            created = _call(self._key, client.create_multipart_upload, Bucket=bucket, Key=self._key)
            self._upload_id = str(created["UploadId"])
        number = len(self._parts) + 1
        upload_id = self._upload_id

        def upload() -> dict[str, Any]:
            sent = _call(self._key, client.upload_part, Bucket=bucket, Key=self._key, UploadId=upload_id,
                         PartNumber=number, Body=body)  # fmt: skip
            return {"PartNumber": number, "ETag": sent["ETag"]}

        self._inflight = _uploaders.submit(upload)

    def _wait_inflight(self) -> None:
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            self._parts.append(inflight.result())

    def commit(self, *, durable: bool = True) -> None:
        """PUT the object, or send the last part and complete the upload; on failure the upload
        is aborted and the error (StorageUnavailable for an outage) raised. With
        ``durable=False`` a small object's PUT runs in the background (``S3Storage.put_later``):
        it is visible, and its failure raised, at ``Storage.sync``."""
        if not self._open:
            raise ValueError("writer is already committed or aborted")
        client, bucket = self._store.client, self._store.location.bucket
        if self._upload_id is None and not durable:
            self._open = False
            body, self._pieces = b"".join(self._pieces), []
            self._store.put_later(self._key, body)  # sync() waits for it and raises its failure
            return
        try:
            if self._upload_id is None:
                _call(self._key, client.put_object, Bucket=bucket, Key=self._key, Body=b"".join(self._pieces))
            else:
                if self._pending:
                    self._send_part()
                self._wait_inflight()
                _call(self._key, client.complete_multipart_upload, Bucket=bucket, Key=self._key,
                      UploadId=self._upload_id, MultipartUpload={"Parts": self._parts})  # fmt: skip
        except BaseException:
            self.abort()
            raise
        self._open = False
        self._pieces = []

    def abort(self) -> None:
        if not self._open:
            return  # aborted already, or committed: the object stays
        self._open = False
        self._pieces = []
        try:
            self._wait_inflight()
        except Exception:  # noqa: BLE001 - the object is being dropped anyway
            pass
        if self._upload_id is not None:
            try:
                _call(self._key, self._store.client.abort_multipart_upload, Bucket=self._store.location.bucket,
                      Key=self._key, UploadId=self._upload_id)  # fmt: skip
            except (StorageUnavailable, ClientError, FileNotFoundError):
                # Left for partials_sweep, which aborts uploads nobody finished.
                log.warning("could not abort the multipart upload of %s; the sweep will", self._key)


class S3Reader(io.RawIOBase):
    """A seekable reader of one object by ranged GETs: each GET asks what the caller reads
    but at least FIRST_RANGE_BYTES, four times more for each sequential one (up to
    MAX_RANGE_BYTES), and is read as a stream, so memory stays near one read."""

    def __init__(
        self, store: S3Storage, name: str, size: int, *, start: int = 0, first_range: int = FIRST_RANGE_BYTES
    ) -> None:
        super().__init__()
        self._store = store
        self._name = name
        self._size = size
        self._position = start
        self._body: Any = None
        self._body_end = 0  # where the open GET's range ends (exclusive)
        self._range_bytes = first_range
        self.name = f"s3://{store.location.bucket}/{name}"  # io.BufferedReader's, read by pydicom

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError("negative seek position")
        if position != self._position:
            self._drop_body()
            self._range_bytes = FIRST_RANGE_BYTES  # a jump: the next read starts small again
            self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view) or self._position >= self._size:
            return 0
        if self._body is None or self._position >= self._body_end:
            self._open_range(len(view))
        want = min(len(view), self._body_end - self._position)
        try:
            data = self._body.read(want)
        except (BotoCoreError, Urllib3Error, OSError) as exc:
            self._drop_body()
            log.warning("object store read failed: %s: %s", self._name, exc)
            raise StorageUnavailable() from exc
        if not data:
            raise OSError(f"{self._name}: the store sent fewer bytes than asked")
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _open_range(self, want: int) -> None:
        self._drop_body()
        end = min(self._size, self._position + max(want, self._range_bytes))
        self._range_bytes = min(self._range_bytes * 4, MAX_RANGE_BYTES)
        got = _call(self._name, self._store.client.get_object, Bucket=self._store.location.bucket, Key=self._name,
                    Range=f"bytes={self._position}-{end - 1}")  # fmt: skip
        self._body, self._body_end = got["Body"], end

    def _drop_body(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            try:
                # A short rest is read out so the connection goes back to the pool; closing a
                # body with bytes unread drops the connection (a new TCP handshake next time).
                if 0 < self._body_end - self._position <= DRAIN_BYTES:
                    body.read()
            except (BotoCoreError, Urllib3Error, OSError):
                pass
            body.close()

    def close(self) -> None:
        self._drop_body()
        super().close()


def part_plan(pieces: Sequence[Piece], *, min_part: int, max_part: int) -> list[Extent | list[Piece]]:
    """The parts of a multipart upload making the concatenation of ``pieces``: an Extent is a
    part copied inside the store (UploadPartCopy), a list a part sent from here (its literal
    bytes and the extents read for it). Every part but the last is ``min_part`` bytes or more
    (S3's rule): bytes and extents too small for a part of their own go into a sent part,
    topped up from the next extent (all of it when its rest would be too small to copy); copied
    parts are at most ``max_part``. A sent part stays under ``2 * min_part`` bytes when no literal
    piece is larger than ``min_part``."""
    parts: list[Extent | list[Piece]] = []
    pending: list[Piece] = []
    pending_bytes = 0
    for piece in pieces:
        if isinstance(piece, bytes):
            pending.append(piece)
            pending_bytes += len(piece)
        elif piece.length:
            taken, rest = _top_up(piece, pending_bytes, min_part)
            if taken is not None:
                pending.append(taken)
                pending_bytes += taken.length
            if rest.length >= min_part:
                if pending_bytes:
                    parts.append(pending)
                    pending, pending_bytes = [], 0
                parts += _copies(rest, max_part)
            elif rest.length:
                pending.append(rest)
                pending_bytes += rest.length
        if pending_bytes >= min_part:
            parts.append(pending)
            pending, pending_bytes = [], 0
    if pending_bytes:  # never an empty part: the store refuses it
        parts.append(pending)
    return parts


def _top_up(extent: Extent, pending_bytes: int, min_part: int) -> tuple[Extent | None, Extent]:
    """What a sent part of ``pending_bytes`` (below ``min_part``) takes from ``extent`` to reach
    it, and the rest: all of it when the rest would be too small to copy."""
    if not 0 < pending_bytes < min_part:
        return None, extent
    take = min_part - pending_bytes
    if extent.length - take < min_part:
        take = extent.length
    return Extent(extent.key, extent.offset, take), Extent(extent.key, extent.offset + take, extent.length - take)


def _copies(extent: Extent, max_part: int) -> list[Extent]:
    """``extent`` in equal shares of at most ``max_part`` (none falls under the minimum)."""
    count = -(-extent.length // max_part)
    share = -(-extent.length // count)
    return [
        Extent(extent.key, extent.offset + start, min(share, extent.length - start))
        for start in range(0, extent.length, share)
    ]


class S3Storage(Storage):
    """Objects under ``location`` in an S3-compatible store, through ``client`` (``s3_client``)."""

    compose_min_bytes = MIN_PART_BYTES

    def __init__(self, location: S3Location, client: Any, *, part_bytes: int = 8 * 1024 * 1024) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"parts must be at least {MIN_PART_BYTES} bytes")
        self.location = location
        self.client = client
        self.part_bytes = part_bytes
        # PUTs committed with durable=False and not synced yet, by the "folder" of their key
        # (an upload's prefix: the bound of PUTS_IN_FLIGHT is per upload, so per request).
        self._deferred: dict[str, dict[str, Future[Any]]] = {}
        self._deferred_lock = threading.Lock()

    def put_later(self, name: str, body: bytes) -> None:
        """PUT ``body`` as ``name`` in the background, at most PUTS_IN_FLIGHT at once per folder
        (waiting here for one to finish beyond that): the instances of one multipart body go up
        concurrently, memory bounded by PUTS_IN_FLIGHT objects."""
        folder = name.rpartition("/")[0]
        while True:
            with self._deferred_lock:
                running = [f for f in self._deferred.get(folder, {}).values() if not f.done()]
            if len(running) < PUTS_IN_FLIGHT:
                break
            wait(running, return_when=FIRST_COMPLETED)
        future = _uploaders.submit(_call, name, self.client.put_object, Bucket=self.location.bucket, Key=name,
                                   Body=body)  # fmt: skip
        with self._deferred_lock:
            self._deferred.setdefault(folder, {})[name] = future

    def _settle(self, names: Sequence[str]) -> list[BaseException]:
        """Wait for the background PUTs of ``names``; their failures."""
        futures = []
        with self._deferred_lock:
            for name in names:
                folder = name.rpartition("/")[0]
                pending = self._deferred.get(folder)
                if pending is not None and (future := pending.pop(name, None)) is not None:
                    futures.append(future)
                    if not pending:
                        del self._deferred[folder]
        return [error for future in futures if (error := future.exception()) is not None]

    def object_name(self, key: str) -> str:
        """The S3 key of ``key``: the location's prefix, then the key."""
        return self.location.prefix + check_key(key)

    def _head(self, key: str) -> dict[str, Any]:
        name = self.object_name(key)
        return _call(name, self.client.head_object, Bucket=self.location.bucket, Key=name)  # type: ignore[no-any-return]

    def writer(self, key: str, *, staged: bool = True) -> S3Writer:
        # Nothing is visible before commit either way: ``staged`` changes nothing here.
        return S3Writer(self, key)

    def open(self, key: str) -> BinaryIO:
        """A buffered reader by ranged GETs; FileNotFoundError if the key is missing."""
        size = int(self._head(key)["ContentLength"])
        return io.BufferedReader(S3Reader(self, self.object_name(key), size), READ_BUFFER_BYTES)  # type: ignore[return-value]

    def open_range(self, key: str, offset: int, length: int) -> BinaryIO:
        """``length`` bytes from ``offset``, by one ranged GET read as a stream (no HEAD: the
        extent comes from the index). FileNotFoundError, on the first read, if the key is missing."""
        reader = S3Reader(self, self.object_name(key), offset + length, start=offset, first_range=length)
        return io.BufferedReader(reader, READ_BUFFER_BYTES)  # type: ignore[return-value]

    def read_into(self, key: str, offset: int, buffer: memoryview) -> None:
        # One ranged GET (as open_range), read straight into ``buffer``: no buffered layer; a
        # body that ends early is S3Reader's OSError.
        with S3Reader(self, self.object_name(key), offset + len(buffer), start=offset, first_range=len(buffer)) as fp:
            done = 0
            while done < len(buffer):
                done += fp.readinto(buffer[done:])

    def compose(self, key: str, pieces: Sequence[Piece]) -> int:
        """One PUT when the whole is below a part; otherwise a multipart upload whose parts are
        copied in the store where ``part_plan`` allows (UploadPartCopy with a CopySourceRange),
        aborted on any failure."""
        name, bucket, client = self.object_name(key), self.location.bucket, self.client
        parts = part_plan(pieces, min_part=MIN_PART_BYTES, max_part=MAX_COPY_PART_BYTES)
        first: Extent | list[Piece] = parts[0] if parts else []
        if len(parts) <= 1 and isinstance(first, list):
            body = self._gather(first)
            _call(name, client.put_object, Bucket=bucket, Key=name, Body=body)
            return len(body)
        upload_id = str(_call(name, client.create_multipart_upload, Bucket=bucket, Key=name)["UploadId"])
        sent: list[dict[str, Any]] = []
        size = 0
        try:
            for number, part in enumerate(parts, start=1):
                if isinstance(part, Extent):
                    source = {"Bucket": bucket, "Key": self.object_name(part.key)}
                    copied = _call(name, client.upload_part_copy, Bucket=bucket, Key=name, UploadId=upload_id,
                                   PartNumber=number, CopySource=source,
                                   CopySourceRange=f"bytes={part.offset}-{part.offset + part.length - 1}")  # fmt: skip
                    etag, size = copied["CopyPartResult"]["ETag"], size + part.length
                else:
                    body = self._gather(part)
                    etag = _call(name, client.upload_part, Bucket=bucket, Key=name, UploadId=upload_id,
                                 PartNumber=number, Body=body)["ETag"]  # fmt: skip
                    size += len(body)
                sent.append({"PartNumber": number, "ETag": etag})
            _call(name, client.complete_multipart_upload, Bucket=bucket, Key=name, UploadId=upload_id,
                  MultipartUpload={"Parts": sent})  # fmt: skip
        except BaseException:
            try:
                _call(name, client.abort_multipart_upload, Bucket=bucket, Key=name, UploadId=upload_id)
            except (StorageUnavailable, ClientError, FileNotFoundError):
                log.warning("could not abort the multipart upload of %s; the sweep will", name)
            raise
        return size

    def _gather(self, pieces: Sequence[Piece]) -> bytes:
        """The bytes of a part sent from here: its literals, and its extents read (ranged GETs)."""
        out = bytearray()
        for piece in pieces:
            if isinstance(piece, Extent):
                with self.open_range(piece.key, piece.offset, piece.length) as fh:
                    data = fh.read(piece.length)
                if len(data) != piece.length:
                    raise OSError(f"{piece.key} ends before the extent to copy")
                out += data
            else:
                out += piece
        return bytes(out)

    def delete(self, key: str) -> None:
        name = self.object_name(key)
        self._settle([name])  # a PUT still running would bring the object back
        _call(name, self.client.delete_object, Bucket=self.location.bucket, Key=name)

    def delete_many(self, keys: Sequence[str]) -> None:
        """DeleteObjects, 1,000 keys a request; missing keys are fine. Raises
        StorageUnavailable, or OSError naming a key the store refused to delete."""
        names = [self.object_name(key) for key in keys]
        self._settle(names)  # a PUT still running would bring an object back
        for start in range(0, len(names), DELETE_BATCH):
            batch = [{"Key": name} for name in names[start : start + DELETE_BATCH]]
            done = _call(batch[0]["Key"], self.client.delete_objects, Bucket=self.location.bucket,
                         Delete={"Objects": batch, "Quiet": True})  # fmt: skip
            if errors := done.get("Errors"):
                raise OSError(f"the store kept {errors[0].get('Key')}: {errors[0].get('Code')}")

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except FileNotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def uri(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{self.location.prefix}{check_key(key)}"

    def keys(self, prefix: str) -> Iterator[str]:
        """Committed keys starting with ``prefix``, in sorted order (ListObjectsV2's)."""
        if prefix and not KEY_RE.fullmatch(prefix):
            raise ValueError("storage key prefix must be characters of [A-Za-z0-9._/-]")
        base = self.location.prefix
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=base + prefix)
        for page in _pages(base + prefix, pages):
            for item in page.get("Contents", []):
                yield str(item["Key"])[len(base) :]

    def sync(self, keys: Sequence[str]) -> None:
        """Wait for the background PUTs of ``keys`` (commit(durable=False)); raise the first
        failure (StorageUnavailable for an outage). An acknowledged PUT is durable in the store."""
        if errors := self._settle([self.object_name(key) for key in keys]):
            raise errors[0]

    def check(self) -> None:
        _call(self.location.bucket, self.client.head_bucket, Bucket=self.location.bucket)

    def partials_sweep(self, *, before: float) -> int:
        """Abort the multipart uploads under the prefix started before ``before``: a process
        killed mid-write left them (their parts are billed and invisible otherwise)."""
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.location.bucket, Prefix=self.location.prefix
        )
        for page in _pages("multipart uploads", pages):
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() >= before:
                    continue
                try:
                    _call(upload["Key"], self.client.abort_multipart_upload, Bucket=self.location.bucket,
                          Key=upload["Key"], UploadId=upload["UploadId"])  # fmt: skip
                except FileNotFoundError:
                    continue  # completed or aborted meanwhile
                aborted += 1
        return aborted


def _pages(what: str, pages: Any) -> Iterator[dict[str, Any]]:
    """A paginator's pages, its failures translated by ``_store_errors``."""
    iterator = iter(pages)
    while True:
        with _store_errors(what):
            page = next(iterator, None)
        if page is None:
            return
        yield page
