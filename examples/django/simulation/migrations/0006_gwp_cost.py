from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("simulation", "0005_zone_and_energy_use")]

    operations = [
        migrations.AddField("simulationresult", "gwp_kgco2e", models.FloatField(null=True)),
        migrations.AddField("simulationresult", "cost_eur", models.FloatField(null=True)),
    ]
