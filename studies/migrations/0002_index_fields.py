from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("studies", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="series",
            name="storage_prefix",
            field=models.CharField(blank=True, max_length=512),
        ),
    ]
