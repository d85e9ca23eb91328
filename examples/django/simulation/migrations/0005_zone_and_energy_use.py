import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("simulation", "0004_create_results_tables")]

    operations = [
        migrations.AddField("simulationresult", "user_id", models.BigIntegerField(null=True)),
        migrations.CreateModel(
            name="ZoneResult",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("zone", models.CharField(max_length=100)),
                ("result", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                             to="simulation.simulationresult")),
            ],
            options={"db_table": "zone_results"},
        ),
        migrations.CreateModel(
            name="EnergyUse",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("end_use", models.CharField(max_length=100)),
                ("kwh", models.FloatField()),
                ("result", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                             to="simulation.simulationresult")),
            ],
            options={"db_table": "energy_use"},
        ),
    ]
