"""RatePacer against a fake clock: the plan's rate in any window, the server's word, Retry-After."""

from __future__ import annotations

from email.utils import formatdate

from prizmed_client.pacing import RatePacer, retry_after_seconds


class FakeTime:
    def __init__(self, wall: float = 1_900_000_020.0) -> None:
        self.mono = 1000.0
        self.offset = wall - self.mono

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.mono + self.offset

    def sleep(self, seconds: float) -> None:
        self.mono += seconds


def pacer(t: FakeTime) -> RatePacer:
    return RatePacer(monotonic=t.monotonic, wall=t.wall, sleep=t.sleep)


def headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(int(reset)),
    }


def test_it_never_sends_more_than_the_limit_in_any_minute() -> None:
    t = FakeTime()
    p = pacer(t)
    sent = []
    for _ in range(200):
        p.wait_turn()
        sent.append(t.monotonic())
        t.sleep(0.05)  # each request takes 50 ms
        p.observe(200, {"x-ratelimit-limit": "60"})  # remaining left out: the pacer's own count alone
    for i, start in enumerate(sent):
        assert sum(1 for s in sent[i:] if s < start + 60) <= 60
    assert sent[60] - sent[0] >= 61  # the 61st waited for the first to leave the window (+ margin)


def test_it_waits_for_the_reset_when_the_server_says_nothing_remains() -> None:
    t = FakeTime()
    p = pacer(t)
    p.wait_turn()
    # Another key of the organization used the window up: 0 remaining, the window ends in 25 s.
    p.observe(200, headers(60, 0, t.wall() + 25))
    waited = p.wait_turn()
    assert 25 <= waited <= 26


def test_it_waits_a_whole_window_when_reset_is_not_on_its_clock() -> None:
    t = FakeTime()
    p = pacer(t)
    p.wait_turn()
    p.observe(200, headers(60, 0, t.wall() + 4 * 365 * 86400))  # a server clock years ahead
    assert p.wait_turn() == 61


def test_it_honours_retry_after_in_seconds_and_as_a_date() -> None:
    t = FakeTime()
    p = pacer(t)
    p.wait_turn()
    p.observe(429, {"retry-after": "7"})
    assert p.wait_turn() == 7
    p.observe(503, {"retry-after": formatdate(t.wall() + 30, usegmt=True)})
    assert 29 <= p.wait_turn() <= 30
    assert retry_after_seconds("soon", t.wall()) is None


def test_it_does_not_pace_an_unlimited_plan() -> None:
    t = FakeTime()
    p = pacer(t)
    for _ in range(1000):
        p.wait_turn()
        p.observe(200, {"x-ratelimit-limit": "unlimited", "x-ratelimit-remaining": "unlimited"})
    assert p.waited == 0
