"""Client settings, read from environment variables only.

The API key comes from ``PRIZMED_API_KEY`` and nowhere else: a key on a command line lands in
shell history and in every user's process list.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
_SIZE_RE = re.compile(r"\s*(\d+)\s*([KMG]i?B?|B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": KIB, "M": MIB, "G": GIB}


class ConfigError(ValueError):
    """A missing or malformed setting; ``str(exc)`` names the variable and is safe to print."""


def parse_size(text: str) -> int:
    """Bytes from ``"8388608"``, ``"8MiB"``, ``"64M"`` or ``"1G"`` (binary units). Raises ValueError."""
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    unit = (match.group(2) or "").upper()[:1]
    return int(match.group(1)) * _UNITS[unit]


@dataclass(frozen=True)
class Settings:
    """Where the server is, the key, and how uploads are cut (all sizes in bytes).

    A file of at most ``batch_file_max`` bytes is sent in a batch (one
    ``application/dicom+stream`` body of at most ``batch_max_files`` files and
    ``batch_max_bytes`` bytes); a file over ``stream_threshold`` as a chunked, resumable
    stream of ``chunk_bytes`` chunks; anything between as one ``application/dicom`` request.
    """

    url: str
    api_key: str
    state_dir: Path
    batch_file_max: int = 4 * MIB
    batch_max_bytes: int = 32 * MIB
    batch_max_files: int = 100
    stream_threshold: int = 64 * MIB
    chunk_bytes: int = 8 * MIB

    @property
    def api_base(self) -> str:
        """The API root, e.g. ``http://127.0.0.1:8000/api/v2``."""
        return self.url.rstrip("/") + "/api/v2"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``PRIZMED_URL``, ``PRIZMED_API_KEY`` and the optional tuning variables.

        Raises ConfigError when the URL or key is missing or a size does not parse.
        """
        env = os.environ if env is None else env
        url = env.get("PRIZMED_URL", "").strip()
        key = env.get("PRIZMED_API_KEY", "").strip()
        if not url.startswith(("http://", "https://")):
            raise ConfigError("PRIZMED_URL must be set to the server's base URL, e.g. http://127.0.0.1:8000")
        if not key:
            raise ConfigError("PRIZMED_API_KEY must be set to an API key (pzm_...)")
        settings = cls(url=url, api_key=key, state_dir=default_state_dir(env))
        sizes = {
            "batch_file_max": "PRIZMED_BATCH_FILE_MAX",
            "batch_max_bytes": "PRIZMED_BATCH_MAX_BYTES",
            "stream_threshold": "PRIZMED_STREAM_THRESHOLD",
            "chunk_bytes": "PRIZMED_CHUNK_BYTES",
        }
        changes: dict[str, Any] = {}
        for field, name in (*sizes.items(), ("batch_max_files", "PRIZMED_BATCH_MAX_FILES")):
            if env.get(name):
                try:
                    changes[field] = parse_size(env[name])
                except ValueError:
                    raise ConfigError(f"{name} is not a size: {env[name]!r}") from None
                if changes[field] < 1:
                    raise ConfigError(f"{name} must be at least 1")
        return replace(settings, **changes)


def default_state_dir(env: Mapping[str, str]) -> Path:
    """``PRIZMED_STATE_DIR``, else ``$XDG_STATE_HOME/prizmed``, else ``~/.local/state/prizmed``."""
    if env.get("PRIZMED_STATE_DIR"):
        return Path(env["PRIZMED_STATE_DIR"]).expanduser()
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "prizmed"
