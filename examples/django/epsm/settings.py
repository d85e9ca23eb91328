"""Settings of the example: three PostgreSQL databases on one server, as in the EPSM deployment."""

import os
from pathlib import Path


def _secret(name: str, default: str = "") -> str:
    """NAME, or the content of the file NAME_FILE (Docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    return Path(path).read_text().strip() if path else os.environ.get(name, default)


SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "materials", "simulation"]


def _database(name: str) -> dict[str, object]:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "HOST": os.environ.get("DB_HOST", "db"),
        "PORT": os.environ.get("DB_PORT", "5432"),
        "USER": os.environ.get("DB_USER", "epsm"),
        "PASSWORD": _secret("DB_PASSWORD"),
    }


DATABASES = {
    "default": _database(os.environ.get("DEFAULT_DB", "epsm_db")),
    "materials_db": _database(os.environ.get("MATERIALS_DB", "epsm_materials")),
    "results_db": _database(os.environ.get("RESULTS_DB", "epsm_results")),
}
DATABASE_ROUTERS = ["epsm.routers.DatabaseRouter"]
