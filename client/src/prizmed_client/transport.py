"""HTTP to the PrizMed API: the key, request ids, pacing, retries and byte counting.

Every request goes through ``Transport.request``. It waits for the pacer's turn, sends, and
retries what is safe to retry:

* ``429`` and ``503``: after ``Retry-After`` (the pacer blocks every send until then), always —
  the server refused before doing anything.
* ``502``/``504`` and transport errors (connection refused or reset, timeouts): with
  exponential backoff and jitter, only for idempotent requests. Every upload step is
  idempotent (a request id the server already completed replays its 202; a chunk with the same
  seq and bytes is a no-op), so the uploader marks them so.

Anything else that is not 2xx raises ``ApiError`` with the RFC 9457 problem body.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from prizmed_client.config import Settings
from prizmed_client.pacing import RatePacer
from prizmed_client.version import __version__

RETRY_STATUSES = (429, 503)
GATEWAY_STATUSES = (502, 504)
TIMEOUT = 60.0  # seconds, per phase
BodyFactory = Callable[[], Iterable[bytes]]


class ApiError(Exception):
    """A non-2xx answer: ``status``, the problem body (``problem``, a dict) and the request id."""

    def __init__(self, status: int, problem: Mapping[str, Any], request_id: str | None) -> None:
        self.status = status
        self.problem = dict(problem)
        self.request_id = request_id
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}".strip())

    @property
    def detail(self) -> str:
        """The problem's ``detail`` (or ``title``), for reports."""
        return str(self.problem.get("detail") or self.problem.get("title") or self.status)


@dataclass
class TransportStats:
    """What this run cost: requests sent, 429s and 503s absorbed, retries, body bytes sent."""

    requests: int = 0
    throttled: int = 0  # 429 answers received (and retried); never shown as an error
    unavailable: int = 0  # 503 answers received (and retried)
    retries: int = 0
    bytes_sent: int = 0  # request body bytes handed to the socket, retries included


class Transport:
    """One httpx connection pool to ``settings.api_base`` with the key, pacing and retries.

    ``http`` is that pool: by default one with ``TIMEOUT`` per phase (connect, read, write,
    pool); pass an ``httpx.Client`` for other timeouts, proxies or TLS settings.
    ``max_attempts`` bounds the retries of one request, 429/503 included.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        pacer: RatePacer | None = None,
        max_attempts: int = 10,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.pacer = pacer or RatePacer(sleep=sleep)
        self.stats = TransportStats()
        self.max_attempts = max_attempts
        self._sleep = sleep
        self.http = http or httpx.Client(timeout=TIMEOUT)
        self._auth = {"Authorization": f"Bearer {settings.api_key}", "User-Agent": f"prizmed-client/{__version__}"}

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def url(self, path: str) -> str:
        """An absolute URL: ``path`` under the API root, or returned as is when already absolute."""
        return path if path.startswith(("http://", "https://")) else self.settings.api_base + path

    def request(  # noqa: PLR0913 - httpx.Client.request's shape: method and URL, then keyword-only options
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: BodyFactory | None = None,
        request_id: str | None = None,
        idempotent: bool = True,
        on_bytes: Callable[[int], None] | None = None,
        ok: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send one request (retrying as the module says) and return its 2xx answer.

        ``body`` is a factory, called again for each attempt, of the body's pieces; ``on_bytes``
        hears of each piece as it is sent. ``request_id`` (UUID v4) defaults to a new one and is
        the same for every attempt. Statuses in ``ok`` are returned instead of raised.
        Raises ApiError, or httpx.TransportError once the attempts are used up.
        """
        request_id = request_id or str(uuid.uuid4())
        send_headers = {**self._auth, **(headers or {}), "X-Request-Id": request_id}
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.wait_turn()
            self.stats.requests += 1
            content = self._counted(body(), on_bytes) if body is not None else None
            try:
                response = self.http.request(
                    method, self.url(path), headers=send_headers, params=params, content=content
                )
            except httpx.TransportError:
                if not idempotent or attempt == self.max_attempts:
                    raise
                self._backoff(attempt)
                continue
            self.pacer.observe(response.status_code, response.headers)
            if response.status_code in RETRY_STATUSES and attempt < self.max_attempts:
                if response.status_code == 429:
                    self.stats.throttled += 1
                else:
                    self.stats.unavailable += 1
                self.stats.retries += 1
                continue  # the pacer holds the next send until Retry-After has passed
            if response.status_code in GATEWAY_STATUSES and idempotent and attempt < self.max_attempts:
                self._backoff(attempt)
                continue
            if response.is_success or response.status_code in ok:
                return response
            raise ApiError(response.status_code, _problem(response), response.headers.get("x-request-id"))
        raise AssertionError("unreachable: the last attempt returns or raises")

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Iterator[httpx.Response]:
        """Open a streamed answer (record stream, WADO-RS retrieval): paced, retried until its
        status line is in, then handed over unread. Raises ApiError on a non-2xx answer."""
        send_headers = {**self._auth, **(headers or {}), "X-Request-Id": str(uuid.uuid4())}
        handed_over = False
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.wait_turn()
            self.stats.requests += 1
            try:
                with self.http.stream(
                    method, self.url(path), headers=send_headers, params=params, timeout=timeout or self.http.timeout
                ) as response:
                    self.pacer.observe(response.status_code, response.headers)
                    if response.status_code in RETRY_STATUSES and attempt < self.max_attempts:
                        self.stats.retries += 1
                        if response.status_code == 429:
                            self.stats.throttled += 1
                        continue
                    if not response.is_success:
                        response.read()
                        raise ApiError(response.status_code, _problem(response), response.headers.get("x-request-id"))
                    handed_over = True
                    yield response
                    return
            except httpx.ConnectError:
                if handed_over or attempt == self.max_attempts:
                    raise
                self._backoff(attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get_json(self, path: str, *, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET a JSON document (retried: reads are idempotent). Raises ApiError."""
        data: dict[str, Any] = self.request("GET", path, params=params).json()
        return data

    def _counted(self, pieces: Iterable[bytes], on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
        for piece in pieces:
            yield piece
            self.stats.bytes_sent += len(piece)
            if on_bytes is not None:
                on_bytes(len(piece))

    def _backoff(self, attempt: int) -> None:
        self.stats.retries += 1
        delay = min(30.0, 0.5 * 2 ** (attempt - 1))
        self._sleep(delay * random.uniform(0.5, 1.0))


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {"title": response.reason_phrase, "detail": response.text[:200]}
    return data if isinstance(data, dict) else {"detail": str(data)}
