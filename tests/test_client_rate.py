"""A Developer-plan organization (60 requests/min) uploads 200 files with `prizmed`: the client
paces itself by the rate headers and no 429 reaches the user, nor is one provoked.

The servers read the rate-limit time from the pinned clock file (PRIZMED_CLOCK_FILE) while the
client paces by its own clock, as it must against a real server. So the test makes the pinned
clock tick with real time (TickingClock): windows open and close as in production, and the
run takes the minute-plus a real one takes. The client is told to put at most 4 files in a
batch so the 200 files cost ~100 requests (50 uploads, their status, the study): by default
they would fit in 2 batches and 5 requests, well inside one window, and prove nothing.
"""

from __future__ import annotations

from pathlib import Path

from accounts.models import Role
from accounts.services import key_issue, organization_ensure
from studies.models import Instance
from tests.support import live
from tests.support.client import TickingClock, access_log, cli_env, prizmed, summary
from tests.support.dicomfactory import make_study
from tests.support.world import Clock, World


def test_it_uploads_200_files_on_the_developer_plan_without_a_429(
    server: live.Server, world: World, clock: Clock, indexer, tmp_path: Path
) -> None:
    org = organization_ensure(slug="initech", plan_slug="developer")
    _, token = key_issue(organization=org, name="uploader", role=Role.STANDARD)
    folder = tmp_path / "data"
    folder.mkdir()
    for i, data in enumerate(make_study(n_series=4, per_series=50, patient_id="DEV1", pixel_bytes=512)):
        (folder / f"{i:03d}.dcm").write_bytes(data)
    env = cli_env(server.url, token, tmp_path / "state", PRIZMED_BATCH_MAX_FILES="4")
    offset = server.log_path.stat().st_size

    with TickingClock(clock):
        run = prizmed(env, "upload", str(folder), "--summary-json", str(tmp_path / "summary.json"))

    print(run.out)  # the summary, with the run's request count and time paced (shown with -s)
    assert run.code == 0, run.err
    report = summary(tmp_path / "summary.json")
    assert report["instances_accepted"] == report["instances_indexed"] == 200
    assert Instance.objects.filter(organization=org).count() == 200
    assert [s["instances"] for s in report["studies"]] == [200]
    # The server's own access log: every request of the run, and not one 429 among them.
    statuses = [line["status"] for line in access_log(server.log_path, offset)]
    assert len(statuses) == report["requests"] > 60  # more than one window's worth: pacing was needed
    assert statuses.count(429) == 0 and report["throttled"] == 0
    assert report["paced_seconds"] > 0  # it did wait for the next window
    assert "429" not in run.err and "rate" not in run.err.lower()
    assert "429 answers absorbed: 0" in run.out
