from django.db import migrations


class Migration(migrations.Migration):
    """Raw SQL on simulation_runs, without router hints: Django runs it on every
    database it migrates, and it fails on results_db, which has no
    simulation_runs. The deployment therefore fakes 0001-0003 on results_db."""

    dependencies = [("simulation", "0002_simulationrun_status")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX simulation_runs_status_created ON simulation_runs (status, created_at)",
            "DROP INDEX simulation_runs_status_created",
        ),
    ]
