"""The deployment's router: materials in materials_db, simulation results in results_db.

Like the original, it decides by model; an operation without a model (the
RunSQL in simulation 0003) gets no answer here, so Django runs it on every
database it migrates. That is why the deployment fakes simulation 0001-0003
on materials_db and results_db instead of running them there.
"""

RESULT_MODELS = {"simulationresult", "hourlytimeseries", "zoneresult", "energyuse"}


class DatabaseRouter:
    def db_for_read(self, model, **hints):  # type: ignore[no-untyped-def]
        return self._database(model._meta.app_label, model._meta.model_name)

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):  # type: ignore[no-untyped-def]
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):  # type: ignore[no-untyped-def]
        if model_name is None:
            return None
        return db == self._database(app_label, model_name)

    @staticmethod
    def _database(app_label: str, model_name: str) -> str:
        if app_label == "materials":
            return "materials_db"
        if app_label == "simulation" and model_name in RESULT_MODELS:
            return "results_db"
        return "default"
