"""Request pacing: never more requests than the organization's plan allows.

The server counts requests per organization in fixed one-minute windows and says so on every
response (``X-RateLimit-Limit``, ``-Remaining``, ``-Reset``; API.md "Plans and limits"). The
pacer keeps two bounds and waits for both:

* its own sends: at most ``limit`` in any ``window + margin`` seconds of its monotonic clock.
  Any fixed window of 60 s then holds at most ``limit`` of them, whatever its phase; the margin
  absorbs network jitter between sending and the server's count.
* the server's word: ``Remaining`` counts every key of the organization (and an earlier run of
  this client in the same window). At 0 it waits until ``Reset``. ``Reset`` is an absolute
  epoch; when it is not within one window of this machine's clock (a skewed clock) it waits one
  full window, which ends any fixed or sliding one-minute window.

A ``Retry-After`` on 429 or 503 (seconds or an HTTP-date, RFC 9110 §10.2.3) blocks every send
until it has passed. The pacer is for one thread: a CLI run sends one request at a time.
"""

from __future__ import annotations

import email.utils
import time
from collections import deque
from collections.abc import Callable, Mapping

WINDOW_SECONDS = 60.0
MARGIN_SECONDS = 1.0


class RatePacer:
    """Decides when the next request may go; ``wait_turn`` before, ``observe`` after each one."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        window: float = WINDOW_SECONDS,
        margin: float = MARGIN_SECONDS,
    ) -> None:
        self._monotonic = monotonic
        self._wall = wall
        self._sleep = sleep
        self._span = window + margin
        self._window = window
        self.limit: int | None = None  # requests per window; None: unknown or unlimited
        self._sent: deque[float] = deque()
        self._remaining: int | None = None
        self._blocked_until = 0.0  # monotonic
        self.waited = 0.0  # seconds spent waiting, for the summary

    def wait_turn(self) -> float:
        """Block until a request may be sent, then count it as sent. Returns the seconds waited."""
        waited = 0.0
        while True:
            delay = self._delay(self._monotonic())
            if delay <= 0:
                break
            self._sleep(delay)
            waited += delay
        self._sent.append(self._monotonic())
        if self._remaining is not None:
            self._remaining -= 1
        self.waited += waited
        return waited

    def _delay(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - self._span:
            self._sent.popleft()
        delays = [self._blocked_until - now]
        if self.limit is not None and len(self._sent) >= self.limit:
            delays.append(self._sent[len(self._sent) - self.limit] + self._span - now)
        if self._remaining is not None and self._remaining <= 0:
            if now < self._blocked_until:
                delays.append(self._blocked_until - now)
            else:
                self._remaining = None  # the window the server spoke of is over
        return max(delays)

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response: the plan's limit, what the window has left, any Retry-After."""
        limit = headers.get("x-ratelimit-limit")
        if limit is not None:
            self.limit = int(limit) if limit.isdigit() else None
        remaining = headers.get("x-ratelimit-remaining", "")
        now = self._monotonic()
        if remaining.isdigit():
            self._remaining = int(remaining)
            if self._remaining <= 0:
                self._block(now + self._until_reset(headers.get("x-ratelimit-reset", "")))
        elif remaining == "unlimited":
            self._remaining = None
        if status in (429, 503):
            retry = retry_after_seconds(headers.get("retry-after"), self._wall())
            self._block(now + (retry if retry is not None else 1.0))

    def _until_reset(self, reset: str) -> float:
        try:
            seconds = float(reset) - self._wall()
        except ValueError:
            return self._span
        return seconds + 0.5 if 0 <= seconds <= self._window else self._span

    def _block(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
