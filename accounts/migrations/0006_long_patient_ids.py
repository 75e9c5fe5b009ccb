"""Patient IDs kept whole up to the index's 512 characters (issue 12): longer than LO's 64 is
what real systems send, and a cut one would be another patient's."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_usage_minute"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="patient_id",
            field=models.CharField(blank=True, max_length=512),
        ),
    ]
