"""Dashboard pages of a large study (issue 16): a 2,000-instance study (20 series × 100) uploaded
and indexed for real, embedded; then, over a staff session, the study's page and the study list
(p50 of sequential loads) and a series thumbnail rendered the first time and then from the cache.

    .venv/bin/python -m bench.dashboard [--series 20] [--per-series 100] [--loads 20]
"""

from __future__ import annotations

import argparse
import re
import time

import httpx

from bench import common
from bench.index import BOUNDARY, upload
from tests.support.dicomfactory import make_study
from tests.support.multipart import build_multipart

PASSWORD = "bench-dashboard-password"


def timed(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (path, response.status_code)
    return elapsed, response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--per-series", type=int, default=100)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    s = common.setup(services=False)
    auth = {"Authorization": f"Bearer {s.issue_key('bench')}"}
    s.manage(
        "shell",
        "-c",
        f"from django.contrib.auth.models import User; User.objects.create_superuser('b', password='{PASSWORD}')",
    )
    server = common.start_server(s)
    try:
        parts = make_study(n_series=args.series, per_series=args.per_series, pixel_bytes=256 * 256)
        with httpx.Client(base_url=server.url, timeout=600) as client:
            for start in range(0, len(parts), 100):
                upload(client, auth, build_multipart(parts[start : start + 100], BOUNDARY))
            client.get("/admin/login/")
            login = {"username": "b", "password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"]}
            assert client.post("/admin/login/", data=login).status_code == 302
            _, listing = timed(client, "/admin/studies/study/")
            study_page = re.search(r'href="(/admin/studies/study/\d+/change/)', listing.text)
            assert study_page is not None
            pages = sorted(timed(client, study_page.group(1))[0] for _ in range(args.loads))
            lists = sorted(timed(client, "/admin/studies/study/")[0] for _ in range(args.loads))
            _, page = timed(client, study_page.group(1))
            thumbnails = re.findall(r'src="(/dashboard/series/\d+/thumbnail)"', page.text)
            assert len(thumbnails) == args.series
            rendered, _ = timed(client, thumbnails[0])
            cached = sorted(timed(client, thumbnails[0])[0] for _ in range(args.loads))
    finally:
        server.stop()
    instances = args.series * args.per_series
    print(f"| {instances}-instance study, embedded | p50 ms |\n|---|---|")
    print(f"| study page ({args.series} series, thumbnails lazy) | {pages[len(pages) // 2]:.1f} |")
    print(f"| study list | {lists[len(lists) // 2]:.1f} |")
    print(f"| series thumbnail, first (rendered) | {rendered:.1f} |")
    print(f"| series thumbnail, again (cached) | {cached[len(cached) // 2]:.1f} |")


if __name__ == "__main__":
    main()
