"""The Django example's backend: its first query is the ORM query that failed in production.

    SELECT COUNT(*) AS "__count" FROM "simulation_results" WHERE ...

It starts only once the migrator is healthy, so results_db has its tables.
"""

import http.server
import os
import sys

import django


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "epsm.settings")
    django.setup()
    from django.db import DatabaseError

    from simulation.models import SimulationResult

    try:
        count = SimulationResult.objects.filter(total_energy_kwh__isnull=False).count()
    except DatabaseError as exc:
        print(f"backend: first query failed: {exc}", flush=True)
        return 1
    print(f"backend: first query ok: simulation_results has {count} rows", flush=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok\n")

    http.server.HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
