"""OHIF's prebuilt files under /viewer/, served by WhiteNoise like the dashboard's own static
files (compressed, cached by hash). Its ``app-config.js`` and page are not served from the
build: dashboard/viewer.py writes them for this server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware

_OWN = frozenset({"/viewer/app-config.js", "/viewer/index.html"})


class ViewerStaticMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]  # WhiteNoise is untyped
    """WhiteNoise, with the viewer's build added at /viewer/ when it is installed."""

    def __init__(self, get_response: Callable[..., Any] | None = None) -> None:
        super().__init__(get_response)
        root = Path(settings.VIEWER_ROOT)
        if (root / "index.html").is_file():
            self.add_files(str(root), prefix="viewer/")
            for url in _OWN:
                self.files.pop(url, None)
