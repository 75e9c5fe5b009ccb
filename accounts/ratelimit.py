"""Per-organization request limits in fixed one-minute windows.

Counters live in the Django cache (core/counters.py): Redis when REDIS_URL is set (so every
server process shares them; create-then-increment is atomic, so concurrent requests never
overshoot), else process memory. docs/decisions.md says why this is not django-ratelimit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.counters import counter_incr

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


def rate_hit(*, organization_id: int, per_minute: int | None, now: float) -> RateDecision:
    """Count one request of the organization and decide whether it may proceed."""
    window = int(now // WINDOW_SECONDS)
    reset = (window + 1) * WINDOW_SECONDS
    retry_after = max(1, math.ceil(reset - now))
    if per_minute is None:
        return RateDecision(limit=None, remaining=None, reset=reset, retry_after=retry_after)
    count = counter_incr(f"prizmed:rate:{organization_id}:{window}", ttl_s=WINDOW_SECONDS * 2)
    return RateDecision(limit=per_minute, remaining=per_minute - count, reset=reset, retry_after=retry_after)
