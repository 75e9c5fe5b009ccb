"""Patient IDs kept whole up to the index's 512 characters (issue 12): longer than LO's 64 is
what real systems send, and a cut one would be another patient's."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0003_fhir_search"),
    ]

    operations = [
        migrations.AlterField(
            model_name="recordevent",
            name="patient_id",
            field=models.CharField(blank=True, max_length=512),
        ),
        migrations.AlterField(
            model_name="recordresource",
            name="key",
            field=models.CharField(max_length=512),
        ),
        migrations.AlterField(
            model_name="recordresource",
            name="patient_id",
            field=models.CharField(blank=True, max_length=512),
        ),
        migrations.AlterField(
            model_name="recordsearchvalue",
            name="value",
            field=models.CharField(blank=True, max_length=512),
        ),
    ]
