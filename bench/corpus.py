"""The benchmark corpus: N databases x M migrations, written for each tool.

Each migration creates a table with four columns, an index and ten rows, as
issue 6 specifies. The same SQL is emitted in every tool's layout:

    sidecar/<db>/0001_m0001.sql                      (plus sidecar.toml / grouped.toml)
    dbmate/<db>/20250101000001_m0001.sql             (-- migrate:up / -- migrate:down)
    yoyo/<db>/0001_m0001.sql
    psql/<db>/0001_m0001.sql and psql/<db>.sql       (one file per migration, and all in one)
"""

from __future__ import annotations

from pathlib import Path

DATABASES = ("bench_default", "bench_materials", "bench_results")


def migration_sql(db: str, n: int) -> str:
    table = f"{db.removeprefix('bench_')}_t{n:04d}"
    return (f"CREATE TABLE {table} (id bigserial PRIMARY KEY, name text NOT NULL, value integer,"
            f" created_at timestamptz NOT NULL DEFAULT now());\n"
            f"CREATE INDEX {table}_value ON {table} (value);\n"
            f"INSERT INTO {table} (name, value) SELECT 'row ' || i, i FROM generate_series(1, 10) AS i;\n")


def write_corpus(root: Path, migrations: int, url_template: str) -> None:
    """Write every tool's layout under `root`; `url_template` has a {db} field."""
    for db in DATABASES:
        concatenated = []
        for n in range(1, migrations + 1):
            sql = migration_sql(db, n)
            concatenated.append(sql)
            for folder, name in (("sidecar", f"{n:04d}_m{n:04d}.sql"), ("yoyo", f"{n:04d}_m{n:04d}.sql"),
                                 ("psql", f"{n:04d}_m{n:04d}.sql")):
                _write(root / folder / db / name, sql)
            _write(root / "dbmate" / db / f"20250101{n:06d}_m{n:04d}.sql",
                   f"-- migrate:up\n{sql}\n-- migrate:down\n")
        _write(root / "psql" / f"{db}.sql", "".join(concatenated))
    for plan, group in (("sidecar.toml", False), ("grouped.toml", True)):
        lines = ['name = "bench"\n']
        for db in DATABASES:
            lines.append(f'[databases.{db}]\nurl = "{url_template.format(db=db)}"\n')
        for db in DATABASES:
            lines.append(f'[[steps]]\nname = "{db}"\ndatabase = "{db}"\nsql = "{db}"\n'
                         f"group = {'true' if group else 'false'}\n")
        _write(root / "sidecar" / plan, "\n".join(lines))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
