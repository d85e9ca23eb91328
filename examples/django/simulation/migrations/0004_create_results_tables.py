import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("simulation", "0003_simulation_runs_index")]

    operations = [
        migrations.CreateModel(
            name="SimulationResult",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("run_id", models.UUIDField(db_index=True)),
                ("total_energy_kwh", models.FloatField(null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"db_table": "simulation_results"},
        ),
        migrations.CreateModel(
            name="HourlyTimeseries",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("hour", models.PositiveSmallIntegerField()),
                ("value_kwh", models.FloatField()),
                ("result", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                             to="simulation.simulationresult")),
            ],
            options={"db_table": "hourly_timeseries"},
        ),
    ]
