"""Move OHIF's prebuilt ``dist/`` from the site root it was built for to /viewer/.

``python -m dashboard.viewer_install <dist dir>`` — run once by `make viewer` after unpacking.
OHIF's build fixes its root at build time in three places: webpack's public path in each entry
bundle (where chunks, workers and WebAssembly load from), absolute ``url(/…)`` in its CSS, and
absolute ``href``/``src`` in its page. Rebuilding OHIF from source with ``PUBLIC_URL=/viewer/``
needs its whole JavaScript toolchain; rewriting those three is what that build would change.
"""

from __future__ import annotations

import sys
from pathlib import Path

PREFIX = "/viewer/"
_REWRITES = {
    ".js": (('__webpack_require__.p = "/";', f'__webpack_require__.p = "{PREFIX}";'),),
    ".css": (("url(/", f"url({PREFIX}"),),
    ".html": (
        ("window.PUBLIC_URL = '/'", f"window.PUBLIC_URL = '{PREFIX}'"),
        ('href="/', f'href="{PREFIX}'),
        ('src="/', f'src="{PREFIX}'),
    ),
}


def viewer_relocate(root: Path) -> int:
    """Rewrite the build under ``root`` in place; returns how many files changed. Raises
    FileNotFoundError when ``root`` holds no OHIF build, ValueError when no entry bundle has the
    public path this rewrite knows (a new OHIF version: check before pinning it)."""
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"{root} holds no OHIF build (index.html)")
    changed = 0
    for path in sorted(root.iterdir()):
        rewrites = _REWRITES.get(path.suffix)
        if rewrites is None or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new = text
        for old, replacement in rewrites:
            new = new.replace(old, replacement)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed += 1
    if '__webpack_require__.p = "/viewer/"' not in "".join(p.read_text("utf-8") for p in root.glob("app.bundle.*.js")):
        raise ValueError("the OHIF build's public path was not found in app.bundle.*.js")
    return changed


if __name__ == "__main__":
    print(f"{viewer_relocate(Path(sys.argv[1]))} files moved under {PREFIX}")
