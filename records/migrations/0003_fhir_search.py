"""The FHIR search index of the current resources (records/search.py) and when each was last
written (FHIR meta.lastUpdated); resources written before are indexed here."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def index_existing(apps, schema_editor):
    from records.search import search_values

    RecordResource = apps.get_model("records", "RecordResource")
    RecordEvent = apps.get_model("records", "RecordEvent")
    RecordSearchValue = apps.get_model("records", "RecordSearchValue")
    for row in RecordResource.objects.iterator(chunk_size=1000):
        created = (
            RecordEvent.objects.filter(organization_id=row.organization_id, seq=row.seq)
            .values_list("created", flat=True)
            .first()
        )
        if created is not None:
            RecordResource.objects.filter(pk=row.pk).update(updated=created)
        RecordSearchValue.objects.bulk_create(
            RecordSearchValue(
                organization_id=row.organization_id,
                resource_id=row.pk,
                kind=row.kind,
                param=name,
                system=value.system,
                value=value.value,
                low=value.low,
                high=value.high,
            )
            for name, value in search_values(row.kind, row.resource)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_audit_append_only"),
        ("records", "0002_record_resources"),
    ]

    operations = [
        migrations.AddField(
            model_name="recordresource",
            name="updated",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.CreateModel(
            name="RecordSearchValue",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[("Patient", "Patient"), ("ImagingStudy", "Study"), ("deleted", "Deleted")],
                        max_length=16,
                    ),
                ),
                ("param", models.CharField(max_length=32)),
                ("system", models.CharField(blank=True, max_length=255)),
                ("value", models.CharField(blank=True, max_length=255)),
                ("low", models.DateTimeField(null=True)),
                ("high", models.DateTimeField(null=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.organization"
                    ),
                ),
                (
                    "resource",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="search_values",
                        to="records.recordresource",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["organization", "kind", "param", "value"], name="record_search_value"),
                    models.Index(fields=["organization", "kind", "param", "low"], name="record_search_date"),
                ],
            },
        ),
        migrations.RunPython(index_existing, migrations.RunPython.noop),
    ]
