"""The compacted record log (current FHIR resource per patient and study) and an index for pruning."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="RecordResource",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[("Patient", "Patient"), ("ImagingStudy", "Study"), ("deleted", "Deleted")],
                        max_length=16,
                    ),
                ),
                ("key", models.CharField(max_length=64)),
                ("patient_id", models.CharField(blank=True, max_length=64)),
                ("study_uid", models.CharField(blank=True, max_length=64)),
                ("seq", models.BigIntegerField()),
                ("resource", models.JSONField()),
            ],
        ),
        migrations.AddIndex(
            model_name="recordevent",
            index=models.Index(fields=["organization", "created"], name="records_rec_organiz_cc525d_idx"),
        ),
        migrations.AddField(
            model_name="recordresource",
            name="organization",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.organization"
            ),
        ),
        migrations.AddIndex(
            model_name="recordresource",
            index=models.Index(fields=["organization", "id"], name="records_rec_organiz_ed085d_idx"),
        ),
        migrations.AddIndex(
            model_name="recordresource",
            index=models.Index(fields=["organization", "seq"], name="records_rec_organiz_5e40f0_idx"),
        ),
        migrations.AddConstraint(
            model_name="recordresource",
            constraint=models.UniqueConstraint(fields=("organization", "kind", "key"), name="record_resource_per_org"),
        ),
    ]
