from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("simulation", "0001_initial")]

    operations = [
        migrations.AddField("simulationrun", "status", models.CharField(default="queued", max_length=20)),
    ]
