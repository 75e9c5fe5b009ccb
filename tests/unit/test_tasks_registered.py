"""Celery's autodiscovery finds every task under the name queued messages already carry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import live

TASK_NAMES = {
    "studies.index_upload",
    "studies.index_upload_part",
    "studies.sweep_pending_objects",
    "studies.expire_streams",
    "records.prune_events",
}


def test_it_registers_every_task_by_autodiscovery_alone() -> None:
    # A fresh interpreter: nothing has imported a tasks module yet, as in a worker starting up.
    script = (
        "import django; django.setup()\n"
        "from prizmed.celery import app\n"
        "app.loader.import_default_modules()\n"
        "import json; print(json.dumps(sorted(app.tasks)))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "prizmed.settings"}
    done = subprocess.run([sys.executable, "-c", script], cwd=live.ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert TASK_NAMES <= set(json.loads(done.stdout.splitlines()[-1]))
