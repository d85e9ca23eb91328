"""The example backend: its first query is the one that failed in the original deployment.

It starts only once the migrator is healthy (Compose `depends_on` with
`condition: service_healthy`), so `simulation_results` is there in epsm_results.
"""

import http.server
import os
import sys

import psycopg2


def main() -> int:
    with open(os.environ["DB_PASSWORD_FILE"], encoding="utf-8") as f:
        password = f.read().strip()
    conn = psycopg2.connect(host=os.environ.get("DB_HOST", "db"), user="epsm", password=password,
                            dbname=os.environ.get("RESULTS_DB", "epsm_results"), connect_timeout=5)
    # Autocommit: a transaction left open after the first query would hold a lock on the table, and
    # the next migration that alters it would wait behind the backend (and time out).
    conn.autocommit = True
    with conn.cursor() as cur:
        try:
            cur.execute('SELECT COUNT(*) AS "__count" FROM "simulation_results"')
        except psycopg2.Error as exc:
            print(f"backend: first query failed: {exc.pgerror or exc}", flush=True)
            return 1
        count = cur.fetchone()[0]
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
