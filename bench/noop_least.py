"""The least a no-op restart can do on sidecar's stack: the bound that section 3 of bench/run.py times it against.

    python bench/noop_least.py PLAN.toml      # with SIDECAR_HEALTH_FILE set; exit 0 when nothing is to do

On the bench's plan it does only what any tool must to say "nothing to do" and report healthy: import
psycopg2 and structlog (the import floor), read the plan (tomllib), log in to each database, read the
plan's rows of each history table in one query, read and hash every file and compare, write the health
file by rename, log its lines as JSON, and exit without the interpreter's teardown. Nothing sidecar adds
(the database's identity, invalid indexes, the history table's layout, keepalive settings, ordering,
versions with dots, secrets kept out of the log) is done, so a tool that does the same job cannot take
less time than this.
"""

import hashlib
import json
import os
import sys
import tomllib

import psycopg2
import structlog


def main(plan_path: str) -> int:
    structlog.configure(processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                                    structlog.processors.JSONRenderer()])
    log = structlog.get_logger()
    with open(plan_path, "rb") as file:
        plan = tomllib.load(file)
    root = os.path.dirname(os.path.abspath(plan_path))
    log.info("sidecar.started", plan=plan["name"])
    conns = {}
    for name, database in plan["databases"].items():
        conns[name] = psycopg2.connect(database["url"])
        log.info("wait.connected", database=name)
    for step in plan["steps"]:
        with conns[step["database"]].cursor() as cur:
            cur.execute("SELECT version, checksum FROM sidecar.migrations WHERE plan = %s", (plan["name"],))
            applied = dict(cur.fetchall())
        folder = os.path.join(root, step["sql"])
        for entry in os.listdir(folder):
            fd = os.open(os.path.join(folder, entry), os.O_RDONLY)
            raw = os.read(fd, 1 << 20)
            os.close(fd)
            raw.decode()
            if applied.get(entry.split("_", 1)[0]) != hashlib.sha256(raw).hexdigest():
                log.error("step.pending", step=step["name"], file=entry)
                return 1
        log.info("step.finished", step=step["name"], applied=0)
    health = os.environ["SIDECAR_HEALTH_FILE"]
    with open(f"{health}.tmp", "w") as file:
        json.dump({"status": "healthy"}, file)
    os.rename(f"{health}.tmp", health)
    log.info("sidecar.ready", plan=plan["name"])
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1])
    sys.stdout.flush()
    os._exit(code)
