"""Per-organization request limits in fixed one-minute windows.

Counters live in the Django cache (core/counters.py): Redis when REDIS_URL is set (so every
server process shares them; create-then-increment is atomic, so concurrent requests never
overshoot), else process memory. docs/decisions.md says why this is not django-ratelimit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.counters import counter_incr, counter_incr_async

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    limit: int | None  # None: the plan is unlimited
    remaining: int | None
    reset: int  # epoch seconds at which the current window ends
    retry_after: int

    @property
    def allowed(self) -> bool:
        return self.remaining is None or self.remaining >= 0

    def headers(self) -> list[tuple[str, str]]:
        unlimited = "unlimited"
        pairs = [
            ("X-RateLimit-Limit", unlimited if self.limit is None else str(self.limit)),
            ("X-RateLimit-Remaining", unlimited if self.remaining is None else str(max(self.remaining, 0))),
            ("X-RateLimit-Reset", str(self.reset)),
        ]
        if not self.allowed:
            pairs.append(("Retry-After", str(self.retry_after)))
        return pairs


def _window(now: float) -> tuple[int, int, int]:
    """The current window's number, its end (epoch seconds) and the seconds until then (≥ 1)."""
    window = int(now // WINDOW_SECONDS)
    reset = (window + 1) * WINDOW_SECONDS
    return window, reset, max(1, math.ceil(reset - now))


def rate_hit(*, organization_id: int, per_minute: int | None, now: float) -> RateDecision:
    """Count one request of the organization and decide whether it may proceed."""
    window, reset, retry_after = _window(now)
    if per_minute is None:
        return RateDecision(limit=None, remaining=None, reset=reset, retry_after=retry_after)
    count = counter_incr(_rate_key(organization_id, window), ttl_s=WINDOW_SECONDS * 2)
    return RateDecision(limit=per_minute, remaining=per_minute - count, reset=reset, retry_after=retry_after)


async def rate_hit_async(*, organization_id: int, per_minute: int | None, now: float) -> RateDecision:
    """``rate_hit`` on the event loop (core/counters.counter_incr_async): the same counter."""
    window, reset, retry_after = _window(now)
    if per_minute is None:
        return RateDecision(limit=None, remaining=None, reset=reset, retry_after=retry_after)
    count = await counter_incr_async(_rate_key(organization_id, window), ttl_s=WINDOW_SECONDS * 2)
    return RateDecision(limit=per_minute, remaining=per_minute - count, reset=reset, retry_after=retry_after)


def _rate_key(organization_id: int, window: int) -> str:
    return f"prizmed:rate:{organization_id}:{window}"


def auth_failure_hit(*, client_address: str, per_minute: int, now: float) -> RateDecision:
    """Count one failed authentication from a client address (docs/security.md): `allowed` turns
    False once the address has failed more than `per_minute` times in the current window."""
    window, reset, retry_after = _window(now)
    count = counter_incr(f"prizmed:authfail:{client_address}:{window}", ttl_s=WINDOW_SECONDS * 2)
    return RateDecision(limit=per_minute, remaining=per_minute - count, reset=reset, retry_after=retry_after)
