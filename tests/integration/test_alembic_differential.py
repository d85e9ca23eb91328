"""The alembic step against the real `alembic upgrade head`: the same database afterwards, in every variant.

Each variant is an Alembic project built in tmp. The real Alembic (`python -m alembic`, the venv's)
upgrades one fresh database, the sidecar step another; then the two must hold the same schema
(tables, columns, indexes and constraints in every schema that is not the server's) and the same
version table rows wherever env.py put the table; `alembic current --check-heads` must pass on
sidecar's database, `sidecar status` say healthy, and a second `sidecar run --once` apply nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.conftest import Project
from tests.pgserver import PgServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "alembic"
ENV_PY = '''
import os

from alembic import context
from sqlalchemy import create_engine, text

url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1)
with create_engine(url{connect}).connect() as connection:
{before}    context.configure(connection=connection{configure})
    with context.begin_transaction():
        context.run_migrations()
'''
REVISION = '''
"""{doc}"""
from alembic import op

revision = {revision!r}
down_revision = {down!r}
branch_labels = {labels!r}
depends_on = {depends!r}


def upgrade():
{body}
'''


@dataclass(frozen=True)
class Revision:
    revision: str
    down: str | tuple[str, ...] | None
    sql: tuple[str, ...]
    folder: str = "versions"
    labels: tuple[str, ...] | None = None
    depends: str | None = None


@dataclass(frozen=True)
class Variant:
    """An Alembic project: its config file (`config`, relative to the project), env.py's configure()
    arguments, and where its version table ends up (`version_table`, for reading its rows)."""

    config: str
    config_text: str
    revisions: tuple[Revision, ...]
    version_table: str = "alembic_version"
    configure: str = ""  # extra configure() keyword arguments
    connect: str = ""  # extra create_engine() arguments
    before: str = ""  # statements before configure()
    files: dict[str, str] = field(default_factory=dict)


def ini(*locations: str) -> str:
    where = "".join(f"\nversion_locations = {' '.join(f'%(here)s/{x}' for x in locations)}"
                    f"\npath_separator = space" if locations else "")
    return f"[alembic]\nscript_location = %(here)s\n{where.lstrip()}\n"


LINE = (Revision("a1", None, ("CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL)",)),
        Revision("a2", "a1", ("CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL"
                              " REFERENCES customers (id))", "CREATE INDEX orders_customer ON orders (customer_id)")))
VARIANTS = {
    "a renamed version table": Variant("alembic.ini", ini(), LINE, version_table="public.schema_history",
                                       configure=', version_table="schema_history"'),
    "the version table in another schema": Variant(
        "alembic.ini", ini(), LINE, version_table="meta.alembic_version", configure=', version_table_schema="meta"',
        before='    connection.execute(text("CREATE SCHEMA IF NOT EXISTS meta"))\n    connection.commit()\n'),
    "the version table on env.py's search path": Variant(
        "alembic.ini", ini(), (Revision("s1", None, ("CREATE TABLE invoices (id int PRIMARY KEY)",)),),
        version_table="billing.alembic_version", connect=', connect_args={"options": "-c search_path=billing"}',
        before='    connection.execute(text("CREATE SCHEMA IF NOT EXISTS billing"))\n    connection.commit()\n'),
    "branches and merges": Variant("alembic.ini", ini(), (
        Revision("r1", None, ("CREATE TABLE base_t (id int PRIMARY KEY)",)),
        Revision("b1", "r1", ("CREATE TABLE left_t (id int PRIMARY KEY)",), labels=("left",)),
        Revision("c1", "r1", ("CREATE TABLE right_t (id int PRIMARY KEY)",), labels=("right",)),
        Revision("m1", ("b1", "c1"), ("CREATE INDEX left_right ON left_t (id DESC)",)),
        Revision("x1", None, ("CREATE TABLE extra_t (id int PRIMARY KEY REFERENCES right_t (id))",),
                 labels=("extra",), depends="c1"),
        Revision("m2", ("m1", "x1"), ("ALTER TABLE base_t ADD COLUMN note text",)))),
    "several version locations": Variant("alembic.ini", ini("core", "reports"), (
        Revision("k1", None, ("CREATE TABLE accounts (id int PRIMARY KEY)",), folder="core"),
        Revision("k2", "k1", ("CREATE TABLE monthly (account int REFERENCES accounts (id))",), folder="reports"),
        Revision("k3", "k2", ("CREATE INDEX monthly_account ON monthly (account)",), folder="core"))),
    "configuration in pyproject.toml": Variant("pyproject.toml", textwrap.dedent('''
        [project]
        name = "shop"
        version = "1"

        [tool.alembic]
        script_location = "%(here)s/migrations"
        version_locations = ["%(here)s/migrations/versions"]
        '''), LINE, files={"migrations/script.py.mako": "${message}\n"}),
    "pyproject.toml with an alembic.ini beside it": Variant("pyproject.toml", textwrap.dedent('''
        [tool.alembic]
        script_location = "%(here)s/migrations"
        '''), (*LINE, Revision("a3", "a2", ("CREATE TABLE refunds (id int)",), folder="more")), files={
        "alembic.ini": "[alembic]\npath_separator = space\n"
                       "version_locations = %(here)s/migrations/versions %(here)s/migrations/more\n"}),
}


def build(root: Path, variant: Variant) -> Path:
    """The project under `root`; the folder its config file is in."""
    script = root / "migrations" if variant.config == "pyproject.toml" else root
    (root / variant.config).parent.mkdir(parents=True, exist_ok=True)
    (root / variant.config).write_text(variant.config_text)
    script.mkdir(parents=True, exist_ok=True)
    (script / "env.py").write_text(ENV_PY.format(connect=variant.connect, before=variant.before,
                                                 configure=variant.configure))
    for r in variant.revisions:
        body = "".join(f"    op.execute({sql!r})\n" for sql in r.sql)
        path = script / r.folder / f"{r.revision}_{r.folder}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(REVISION.format(doc=f"{r.revision} in {r.folder}", revision=r.revision, down=r.down,
                                        labels=r.labels, depends=r.depends, body=body))
    for name, text in variant.files.items():
        (root / name).write_text(text)
    return root


def alembic(folder: Path, config: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real Alembic, as a developer runs it in the project's folder."""
    options = [] if config == "pyproject.toml" else ["-c", config]
    return subprocess.run([sys.executable, "-m", "alembic", *options, *args], cwd=folder, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url}, check=False, timeout=120)


def snapshot(server: PgServer, dbname: str) -> dict[str, list[tuple[object, ...]]]:
    """Every schema that is not the server's: its tables, columns, indexes and constraints."""
    mine = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%%'"
    queries = {
        "schemas": f"SELECT nspname FROM pg_namespace n WHERE {mine}",
        "relations": f"SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid ="
                     f" c.relnamespace WHERE {mine} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i', 'f')",
        "columns": "SELECT table_schema, table_name, column_name, data_type, character_maximum_length, is_nullable,"
                   " column_default FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog',"
                   " 'information_schema')",
        "indexes": "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes WHERE schemaname NOT IN"
                   " ('pg_catalog', 'information_schema')",
        "constraints": f"SELECT n.nspname, t.relname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
                       f" JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
                       f" WHERE {mine}",
    }
    return {name: sorted(server.query(dbname, sql), key=repr) for name, sql in queries.items()}


def rows(server: PgServer, dbname: str, table: str) -> list[object]:
    return sorted(r[0] for r in server.query(dbname, f"SELECT version_num FROM {table}"))


def plan(steps: list[tuple[str, str, str]]) -> str:
    """(database key, URL variable, config) per step."""
    databases = "".join(f'[databases.{key}]\nurl = "${{{var}}}"\ncreate = true\n' for key, var, _ in steps)
    return databases + "".join(f'[[steps]]\nname = "{key}"\ndatabase = "{key}"\nalembic = "{config}"\n'
                               f'python = "${{PYTHON}}"\n' for key, _, config in steps)


def sidecar_twice(project: Project) -> None:
    """The sidecar run, healthy status, and a second run that applies nothing."""
    first = project.run("run", "--once", PYTHON=sys.executable)
    assert first.code == 0, first.out
    assert first.event("alembic.revision.applied")
    status = project.run("status", PYTHON=sys.executable)
    assert status.code == 0 and "healthy" in status.out, status.out
    again = project.run("run", "--once", PYTHON=sys.executable, LOG_LEVEL="debug")
    assert again.code == 0, again.out
    assert not again.event("alembic.revision.applied"), again.out
    assert {e["reason"] for e in again.event("step.skipped")} == {"no Alembic revision pending"}


def reference(project: Project, key: str) -> str:
    """A fresh database of its own for the real Alembic: the name."""
    name = f"{project.names[key]}_ref"
    project.server.query("postgres", f'CREATE DATABASE "{name}"')
    return name


def agree(project: Project, folder: Path, config: str, key: str, table: str) -> None:
    """The database sidecar migrated is the one the real Alembic made, and Alembic says it is at its heads."""
    ours, theirs = project.names[key], f"{project.names[key]}_ref"
    assert snapshot(project.server, ours) == snapshot(project.server, theirs)
    assert rows(project.server, ours, table) == rows(project.server, theirs, table)
    assert rows(project.server, ours, table)
    current = alembic(folder, config, project.server.url(ours), "current", "--check-heads")
    assert current.returncode == 0, current.stdout + current.stderr
    assert "(head)" in current.stdout, current.stdout


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_step_leaves_what_alembic_upgrade_head_leaves(project: Project, name: str) -> None:
    variant = VARIANTS[name]
    folder = build(project.root / "proj", variant)
    upgraded = alembic(folder, variant.config, project.server.url(reference(project, "default")), "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    project.plan(plan([("default", "DEFAULT_DATABASE_URL", f"proj/{variant.config}")]))
    sidecar_twice(project)
    agree(project, folder, variant.config, "default", variant.version_table)


def test_the_example_project_leaves_what_alembic_upgrade_head_leaves(project: Project) -> None:
    shutil.copytree(EXAMPLE, project.root, dirs_exist_ok=True)
    for folder, key in (("app", "default"), ("audit", "results")):
        done = alembic(project.root / folder, "alembic.ini", project.server.url(reference(project, key)),
                       "upgrade", "head")
        assert done.returncode == 0, done.stdout + done.stderr
    project.plan(plan([("default", "DEFAULT_DATABASE_URL", "app/alembic.ini"),
                       ("results", "RESULTS_DATABASE_URL", "audit/alembic.ini")]))
    sidecar_twice(project)
    for folder, key in (("app", "default"), ("audit", "results")):
        agree(project, project.root / folder, "alembic.ini", key, "alembic_version")


@pytest.mark.parametrize("targets", [("b1", "c1"), ("x1",)], ids=["on both branches", "through a dependency"])
def test_a_database_halfway_is_judged_as_alembic_judges_it(project: Project, targets: tuple[str, ...]) -> None:
    """Upgraded halfway by the real Alembic (to two branch heads: two rows in the version table; or to x1,
    which depends on c1, so its row alone stands for r1, c1 and x1), the rest is pending as `upgrade head`
    sees it, in the order sidecar's run then applies it, and the end is the real Alembic's."""
    variant = VARIANTS["branches and merges"]
    folder = build(project.root / "proj", variant)
    project.plan(plan([("default", "DEFAULT_DATABASE_URL", "proj/alembic.ini")]))
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    ours = project.server.url(project.names["default"])
    for target in targets:
        done = alembic(folder, "alembic.ini", ours, "upgrade", target)
        assert done.returncode == 0, done.stdout + done.stderr
    assert rows(project.server, project.names["default"], "alembic_version") == list(targets)
    status = project.run("status", PYTHON=sys.executable)
    assert status.code == 1, status.out
    assert "default (default): 3 applied, 3 pending, in public.alembic_version" in status.out, status.out
    pending = next(line for line in status.out.splitlines() if "pending Alembic" in line)
    upgraded = alembic(folder, "alembic.ini", project.server.url(reference(project, "default")), "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    ran = project.run("run", "--once", PYTHON=sys.executable)
    assert ran.code == 0, ran.out
    applied = [e["revision"] for e in ran.event("alembic.revision.applied")]
    assert pending.strip() == f"default: pending Alembic {', '.join(applied)} (step 'default')", applied
    agree(project, folder, "alembic.ini", "default", "alembic_version")
