"""API key format: `pzm_` + 32 random base62 characters + a 6-character CRC32 checksum.

The fixed prefix lets secret scanners find leaked keys; the checksum lets a typo or a made-up
key be refused without touching the database (the scheme GitHub uses for its tokens).
"""

from __future__ import annotations

import hashlib
import secrets
import string
import zlib
from dataclasses import dataclass

PRODUCT_PREFIX = "pzm_"
_ALPHABET = string.digits + string.ascii_letters
_RANDOM_LEN = 32  # 32 base62 characters ≈ 190 bits
_CHECKSUM_LEN = 6
_VISIBLE_LEN = 8  # random characters shown as the key's prefix in lists and logs
KEY_LEN = len(PRODUCT_PREFIX) + _RANDOM_LEN + _CHECKSUM_LEN


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), _CHECKSUM_LEN)


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    prefix: str
    digest: str


def key_digest(plaintext: str) -> str:
    # A plain SHA-256 suffices: the key carries 190 random bits, so there is nothing to
    # brute-force, and the digest does not depend on SECRET_KEY (rotating it keeps keys valid).
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_generate() -> NewKey:
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LEN))
    plaintext = PRODUCT_PREFIX + random_part + _checksum(random_part)
    return NewKey(plaintext=plaintext, prefix=key_prefix(plaintext), digest=key_digest(plaintext))


def key_prefix(plaintext: str) -> str:
    return plaintext[: len(PRODUCT_PREFIX) + _VISIBLE_LEN]


def key_is_well_formed(candidate: str) -> bool:
    if len(candidate) != KEY_LEN or not candidate.startswith(PRODUCT_PREFIX):
        return False
    body = candidate[len(PRODUCT_PREFIX) :]
    if any(ch not in _ALPHABET for ch in body):
        return False
    random_part, checksum = body[:_RANDOM_LEN], body[_RANDOM_LEN:]
    return secrets.compare_digest(_checksum(random_part), checksum)
