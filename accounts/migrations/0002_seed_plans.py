"""Seed the plans from the product page's table, and the dashboard's Auditors group.

Sizes are decimal (500 MB = 500 * 10**6 bytes), bandwidth in bits per second; empty = unlimited.
The Auditors group gets its permissions in the migration that creates the audit log.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

PLANS = [
    ("Developer", "developer", 60, 10 * 10**6, 500 * 10**6),
    ("Professional", "professional", 600, 100 * 10**6, 4 * 10**9),
    ("Enterprise", "enterprise", None, None, None),
]


def seed(apps: Any, schema_editor: Any) -> None:
    Plan = apps.get_model("accounts", "Plan")
    for name, slug, rpm, bps, max_bytes in PLANS:
        Plan.objects.update_or_create(
            slug=slug,
            defaults={"name": name, "requests_per_minute": rpm, "bandwidth_bps": bps, "max_study_bytes": max_bytes},
        )
    apps.get_model("auth", "Group").objects.get_or_create(name="Auditors")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
