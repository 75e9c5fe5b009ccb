"""Loaded by pytest before Django (`-p tests.testenv` in pyproject): the test run's environment.

DEBUG stays off in tests, as in production, so the settings demand a secret key.
"""

from __future__ import annotations

import os
import uuid

# At least 50 characters: the settings refuse shorter keys with production services.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
# The audit chain's HMAC key, shared with the servers and workers the tests start.
os.environ.setdefault("PRIZMED_AUDIT_KEY", "test-only-audit-chain-key-0123456789abcdef")
# Each run gets its own Redis key space and task queue: counters, events and tasks of an
# earlier or concurrent run on the same Redis never reach this one.
os.environ["PRIZMED_NAMESPACE"] = f"test-{uuid.uuid4().hex[:12]}"
