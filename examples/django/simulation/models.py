from django.db import models


class SimulationRun(models.Model):
    """Lives in the default database."""

    id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, default="queued")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "simulation_runs"


class SimulationResult(models.Model):
    """Lives in results_db; run_id points across databases, so it is no foreign key."""

    run_id = models.UUIDField(db_index=True)
    user_id = models.BigIntegerField(null=True)
    total_energy_kwh = models.FloatField(null=True)
    gwp_kgco2e = models.FloatField(null=True)
    cost_eur = models.FloatField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "simulation_results"


class HourlyTimeseries(models.Model):
    result = models.ForeignKey(SimulationResult, on_delete=models.CASCADE)
    hour = models.PositiveSmallIntegerField()
    value_kwh = models.FloatField()

    class Meta:
        db_table = "hourly_timeseries"


class ZoneResult(models.Model):
    result = models.ForeignKey(SimulationResult, on_delete=models.CASCADE)
    zone = models.CharField(max_length=100)

    class Meta:
        db_table = "zone_results"


class EnergyUse(models.Model):
    result = models.ForeignKey(SimulationResult, on_delete=models.CASCADE)
    end_use = models.CharField(max_length=100)
    kwh = models.FloatField()

    class Meta:
        db_table = "energy_use"
