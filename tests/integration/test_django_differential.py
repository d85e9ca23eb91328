"""Differential: after the Django step, every database is what `manage.py migrate --database=ALIAS`,
run for each alias in DATABASES order, leaves on other fresh databases.

Each variant is a small Django project written into tmp_path. Its reference side runs the real
`python manage.py migrate --database=ALIAS --noinput` per alias (after the `--fake` commands its plan's
fakes stand for); its sidecar side runs `sidecar run --once`. Then, per alias, the two databases must
hold the same schema (columns, indexes, constraints, in every schema), the same django_migrations rows
(app, name, in order, wherever Django keeps the table), the same content types and permissions, and
the same rows in every other table. On the sidecar side, `manage.py migrate --check --database=ALIAS`
must exit 0 on every alias, `sidecar status` must be healthy, and a second run must apply nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest

from sidecar.django_state import DjangoMigration, Where
from sidecar.kinds.base import Context
from sidecar.kinds.django import DjangoAlias, DjangoStep, state, todo
from tests.integration.conftest import Project, wait_for
from tests.integration.test_django_example import EXAMPLE
from tests.pgserver import PASSWORD, SUPERUSER

MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""
SETTINGS = """
import os
P = os.environ["DJ_PREFIX"]


def db(name, **extra):
    return {"ENGINE": "django.db.backends.postgresql", "NAME": f"{P}_{name}", "HOST": os.environ["DB_HOST"],
            "PORT": os.environ["DB_PORT"], "USER": os.environ["DB_USER"], "PASSWORD": os.environ["DB_PASSWORD"],
            **extra}


SECRET_KEY = "not-a-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASE_ROUTERS = []
"""
CONTRIB = ["django.contrib.contenttypes", "django.contrib.auth"]
# One router for all variants: a rule per app and alias, `None` for no opinion (as a router's answer).
ROUTER = """
RULES = {rules!r}


class Router:
    def allow_migrate(self, db, app_label, model_name=None, **hints):
        rule = RULES.get(app_label, {{}})
        if "target" in hints:
            return db == hints["target"]
        return rule.get(db, rule.get("*"))

    def db_for_read(self, model, **hints):
        rule = RULES.get(model._meta.app_label, {{}})
        return next((db for db, allowed in rule.items() if allowed and db != "*"), None)

    db_for_write = db_for_read


class Second:  # asked when the first has no opinion
    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if (db, app_label) == ("archive", "notes") else None
"""


@dataclass
class Variant:
    """A generated project: its aliases (DATABASES order) with their database's suffix, and what else."""

    aliases: dict[str, str]  # alias -> the suffix of its database name ({prefix}_{suffix})
    files: dict[str, str]  # path -> text (settings.py gets SETTINGS before its text)
    plan_step: str = ""  # extra keys of the Django step
    fakes: tuple[tuple[str, str, str], ...] = ()  # (alias, app, to): `migrate APP TO --fake` first
    setup: Callable[[Project, str], None] = lambda project, database: None  # per fresh database
    # Before: manage.py commands run on both sides, or ("round",): a first round, each side its own way.
    before: tuple[tuple[str, ...], ...] = ()
    then: dict[str, str] = field(default_factory=dict)  # files written after `before`
    env: Callable[[str], dict[str, str]] = lambda prefix: {}  # more environment, by database prefix


def app(label: str, models: str = "", **migrations: str) -> dict[str, str]:
    files = {f"{label}/__init__.py": "", f"{label}/migrations/__init__.py": "",
             f"{label}/models.py": "from django.db import models\n" + textwrap.dedent(models)}
    files |= {f"{label}/migrations/{name}.py": "from django.db import migrations, models\n\n\n"
              + textwrap.dedent(text) for name, text in migrations.items()}
    return files


def settings(apps: list[str], databases: str, rules: dict[str, dict[str, bool | None]] | None = None,
             extra: str = "") -> dict[str, str]:
    routers = 'DATABASE_ROUTERS = ["proj.routers.Router"]\n' if rules is not None else ""
    files = {"manage.py": MANAGE, "proj/__init__.py": "", "proj/settings.py": SETTINGS + f"INSTALLED_APPS = {apps!r}\n"
             f"DATABASES = {{{databases}}}\n" + routers + extra}
    if rules is not None:
        files["proj/routers.py"] = ROUTER.format(rules=rules)
    return files


def model(name: str, fields: str, options: str = "") -> str:
    more = f", options={options}" if options else ""
    return (f"migrations.CreateModel(name={name!r}, fields=[('id', models.BigAutoField(auto_created=True,"
            f" primary_key=True, serialize=False, verbose_name='ID')), {fields}]{more})")


# -- the variants ---------------------------------------------------------------------------------------

SESSIONS_ELSEWHERE = Variant(  # the case django-router-contenttypes, with our own names
    {"default": "default", "other": "other"},
    settings([*CONTRIB, "django.contrib.sessions"], '"default": db("default"), "other": db("other")',
             {"sessions": {"other": True, "*": False}, "contenttypes": {"default": True, "*": False},
              "auth": {"default": True, "*": False}}))

THREE_ALIASES = Variant(
    {"default": "default", "beta": "beta", "alpha": "alpha"},  # DATABASES order is not alphabetical
    settings([*CONTRIB, "shop", "ledger"], '"default": db("default"), "beta": db("beta"), "alpha": db("alpha")',
             {"shop": {"alpha": True, "*": False}, "ledger": {"beta": True, "*": False},
              "contenttypes": {"default": True, "*": False}, "auth": {"default": True, "*": False}})
    | app("shop", """
        class Tag(models.Model):
            name = models.CharField(max_length=20)

        class Product(models.Model):
            name = models.CharField(max_length=50)
            tags = models.ManyToManyField(Tag)

        class Order(models.Model):
            product = models.ForeignKey(Product, models.CASCADE)
            qty = models.IntegerField(default=1)

            class Meta:
                indexes = [models.Index(fields=["qty"], name="shop_order_qty")]
        """, **{"0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [
                {model("Tag", "('name', models.CharField(max_length=20))")},
                {model("Product", "('name', models.CharField(max_length=50)), ('tags', models.ManyToManyField("
                       "to='shop.tag'))")},
            ]
        """, "0002_order": f"""
        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [
                {model("Order", "('qty', models.IntegerField(default=1)), ('product', models.ForeignKey("
                       "on_delete=models.CASCADE, to='shop.product'))")},
                migrations.AddIndex("order", models.Index(fields=["qty"], name="shop_order_qty")),
            ]
        """})
    | app("ledger", """
        class Entry(models.Model):
            amount = models.DecimalField(max_digits=9, decimal_places=2)

            class Meta:
                permissions = [("audit_entry", "Can audit entries")]
        """, **{"0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("Entry", "('amount', models.DecimalField(max_digits=9, decimal_places=2))",
                                 "{'permissions': [('audit_entry', 'Can audit entries')]}")}]
        """}))

ROUTER_ANSWERS = Variant(  # True, False and None (no opinion: Django's default, allowed)
    {"default": "default", "reports": "reports", "archive": "archive"},
    settings([*CONTRIB, "audit", "vault", "notes"],
             '"default": db("default"), "reports": db("reports"), "archive": db("archive")',
             {"audit": {"reports": True, "*": False}, "vault": {"archive": True, "*": False},
              "contenttypes": {"archive": False}, "auth": {"archive": False}},
             'DATABASE_ROUTERS = ["proj.routers.Router", "proj.routers.Second"]\n')

    | app("audit", "class Event(models.Model):\n    kind = models.CharField(max_length=10)\n", **{
        "0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("Event", "('kind', models.CharField(max_length=10))")}]
        """})
    | app("vault", "class Box(models.Model):\n    label = models.CharField(max_length=10)\n", **{
        "0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("Box", "('label', models.CharField(max_length=10))")}]
        """})
    | app("notes", "class Note(models.Model):\n    text = models.TextField()\n", **{
        "0001_initial": f"""
        class Migration(migrations.Migration):
            dependencies = [("audit", "0001_initial")]
            operations = [{model("Note", "('text', models.TextField())")},
                          migrations.RunSQL("INSERT INTO notes_note (text) VALUES ('everywhere')")]
        """}))

MODEL_LESS = Variant(  # apps without models: allow_migrate(alias, app), and hints
    {"default": "default", "side": "side"},
    settings(["counter", "tagsql", "plain"], '"default": db("default"), "side": db("side")',
             {"counter": {"side": True, "*": False}})
    | app("counter", **{"0001_initial": """
        class Migration(migrations.Migration):
            operations = [migrations.RunSQL("CREATE TABLE counter_t (n int)")]
        """, "0002_one": """
        class Migration(migrations.Migration):
            dependencies = [("counter", "0001_initial")]
            operations = [migrations.RunSQL("INSERT INTO counter_t VALUES (1)")]
        """})
    | app("tagsql", **{"0001_initial": """
        class Migration(migrations.Migration):
            operations = [migrations.RunSQL("CREATE TABLE tagsql_t (tag text)", hints={"target": "default"})]
        """})
    | app("plain", "class Thing(models.Model):\n    x = models.IntegerField()\n", **{"0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("Thing", "('x', models.IntegerField())")}]
        """}))

INVENTORY = {"0001_initial": f"""
    class Migration(migrations.Migration):
        operations = [{model("Item", "('name', models.CharField(max_length=20))")}]
    """, "0002_sku": """
    class Migration(migrations.Migration):
        dependencies = [("inv", "0001_initial")]
        operations = [migrations.AddField("item", "sku", models.CharField(max_length=8, default=""))]
    """, "0003_index": """
    class Migration(migrations.Migration):
        dependencies = [("inv", "0002_sku")]
        operations = [migrations.AddIndex("item", models.Index(fields=["sku"], name="inv_item_sku"))]
    """}
SQUASHED_HALF_APPLIED = Variant(  # default has 0001 of what the squash replaces, other has none of it
    {"default": "default", "other": "other"},
    settings(["inv"], '"default": db("default"), "other": db("other")')
    | app("inv", "class Item(models.Model):\n    name = models.CharField(max_length=20)\n"
          "    sku = models.CharField(max_length=8, default='')\n", **INVENTORY),
    before=(("migrate", "inv", "0001", "--database=default"),),
    then={"inv/migrations/0001_squashed_0003_index.py": "from django.db import migrations, models\n\n\n"
          + textwrap.dedent(f"""
          class Migration(migrations.Migration):
              replaces = [("inv", "0001_initial"), ("inv", "0002_sku"), ("inv", "0003_index")]
              operations = [
                  {model("Item", "('name', models.CharField(max_length=20)), ('sku', models.CharField(max_length=8,"
                         " default=''))")},
                  migrations.AddIndex("item", models.Index(fields=["sku"], name="inv_item_sku")),
              ]
          """)})

RUN_BEFORE = Variant(  # extra.0001 runs before base.0001, which writes into extra's table
    {"default": "default", "copy": "copy"},
    settings(["base", "extra"], '"default": db("default"), "copy": db("copy")')
    | app("base", **{"0001_initial": """
        class Migration(migrations.Migration):
            operations = [migrations.RunSQL("INSERT INTO extra_log (msg) VALUES ('base ran after extra')")]
        """})
    | app("extra", "class Log(models.Model):\n    msg = models.TextField()\n", **{"0001_initial": f"""
        class Migration(migrations.Migration):
            run_before = [("base", "0001_initial")]
            operations = [{model("Log", "('msg', models.TextField())")}]
        """}))

OTHER_ALIAS = Variant(  # a RunPython writes through another alias: once per alias it runs on, in order
    {"mirror": "mirror", "default": "default"},
    settings(["sync"], '"mirror": db("mirror"), "default": db("default")',
             {"sync": {"mirror": True, "*": False}})
    | app("sync", "class Copy(models.Model):\n    source = models.CharField(max_length=20)\n", **{
        "0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("Copy", "('source', models.CharField(max_length=20))")}]
        """, "0002_copy": """
        def forwards(apps, schema_editor):
            apps.get_model("sync", "Copy").objects.using("mirror").create(source=schema_editor.connection.alias)


        class Migration(migrations.Migration):
            dependencies = [("sync", "0001_initial")]
            operations = [migrations.RunPython(forwards, hints={"target": "default"})]
        """, "0003_copy_everywhere": """
        def forwards(apps, schema_editor):
            alias = schema_editor.connection.alias
            apps.get_model("sync", "Copy").objects.using("mirror").create(source="all " + alias)


        class Migration(migrations.Migration):
            dependencies = [("sync", "0002_copy")]
            operations = [migrations.RunPython(forwards)]
        """}))
OTHER_ALIAS.files["proj/routers.py"] = OTHER_ALIAS.files["proj/routers.py"].replace(
    'RULES.get(app_label, {})\n', 'RULES.get(app_label, {}) if hints.get("model_name") or "target" in hints'
    ' else {}\n')

FIRST_APP = settings([*CONTRIB, "first"], '"default": db("default"), "other": db("other")',
                     {"first": {"other": True, "*": False}, "later": {"other": True, "*": False},
                      "contenttypes": {"default": True, "*": False}, "auth": {"default": True, "*": False}})
LATER = app("later", "class B(models.Model):\n    y = models.IntegerField()\n", **{"0001_initial": f"""
    class Migration(migrations.Migration):
        dependencies = [("first", "0001_initial")]
        operations = [{model("B", "('y', models.IntegerField())")}]
    """})
APP_ADDED_LATER = Variant(
    {"default": "default", "other": "other"},
    FIRST_APP | app("first", "class A(models.Model):\n    x = models.IntegerField()\n", **{"0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("A", "('x', models.IntegerField())")}]
        """}),
    before=(("round",),),
    then=LATER | {"proj/settings.py": FIRST_APP["proj/settings.py"].replace('"first"]', '"first", "later"]')})

ROLE = "difftest_owner"
TENANT = "difftest_tenant"


def schemas(project: Project, database: str) -> None:
    """The schemas and roles the search-path variant's settings name, on a fresh database."""
    for statement in (f"CREATE SCHEMA shop; CREATE SCHEMA ops; CREATE SCHEMA {ROLE} AUTHORIZATION {ROLE};"
                      f" CREATE SCHEMA app AUTHORIZATION {TENANT}; GRANT CREATE ON DATABASE \"{database}\" TO"
                      f" {TENANT}; ALTER ROLE {TENANT} IN DATABASE \"{database}\" SET search_path = app",):
        project.server.query(database, statement)


def roles(project: Project) -> None:
    project.server.query("postgres", f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN CREATE ROLE {ROLE}; END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{TENANT}') THEN
            CREATE ROLE {TENANT} LOGIN PASSWORD '{PASSWORD}'; END IF; END $$""")


SEARCH_PATHS = Variant(  # where Django keeps its tables: OPTIONS' search_path, assume_role's $user, the role's
    {"default": "default", "ops": "ops", "owner": "owner", "tenant": "tenant"},
    settings([*CONTRIB, "shop"], '"default": db("default", OPTIONS={"options": "-c search_path=shop"}),'
             ' "ops": db("ops", OPTIONS={"options": "--search-path=ops,public -c statement_timeout=60000",'
             ' "connect_timeout": 5, "application_name": "difftest"}),'
             f' "owner": db("owner", OPTIONS={{"assume_role": "{ROLE}"}}),'
             f' "tenant": {{**db("tenant"), "USER": "{TENANT}"}}')
    | app("shop", "class Product(models.Model):\n    name = models.CharField(max_length=50)\n", **{
        "0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("Product", "('name', models.CharField(max_length=50))")}]
        """}),
    setup=schemas)

CUSTOM_NAME = Variant(  # an alias whose NAME is not its name, with TEST settings of its own
    {"default": "default", "reports": "rpt"},
    settings(["daily"], '"default": db("default"), "reports": db("rpt", TEST={"NAME": "test_rpt",'
             ' "DEPENDENCIES": []})', {"daily": {"reports": True, "*": False}})
    | app("daily", "class Report(models.Model):\n    day = models.DateField()\n", **{"0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("Report", "('day', models.DateField())")}]
        """}),
    plan_step='aliases = { reports = "rpt" }')

SEEN_STATE = Variant(  # what a migration sees of the project state depends on what the alias had applied
    {"default": "default", "second": "second"},
    settings(["alpha", "zeta"], '"default": db("default"), "second": db("second")')
    | app("alpha", "class Seen(models.Model):\n    models = models.TextField()\n", **{"0001_initial": f"""
        def forwards(apps, schema_editor):
            seen = sorted(m._meta.label for m in apps.get_models())
            apps.get_model("alpha", "Seen").objects.using(schema_editor.connection.alias).create(models=seen)


        class Migration(migrations.Migration):
            operations = [{model("Seen", "('models', models.TextField())")}, migrations.RunPython(forwards)]
        """})
    | app("zeta", "class Thing(models.Model):\n    x = models.IntegerField()\n", **{"0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("Thing", "('x', models.IntegerField())")}]
        """}),
    before=(("migrate", "zeta", "--database=second"),))

FROM_PGOPTIONS = Variant(  # no OPTIONS["options"]: libpq takes PGOPTIONS from the environment
    {"default": "default"},
    settings(["shop"], '"default": db("default")')
    | app("shop", "class Product(models.Model):\n    name = models.CharField(max_length=50)\n", **{
        "0001_initial": f"""
        class Migration(migrations.Migration):
            operations = [{model("Product", "('name', models.CharField(max_length=50))")}]
        """}),
    setup=lambda project, database: project.server.query(database, "CREATE SCHEMA envpath"),
    env=lambda prefix: {"PGOPTIONS": "-c search_path=envpath"})

VARIANTS = {"sessions elsewhere (router, content types)": SESSIONS_ELSEWHERE, "three aliases": THREE_ALIASES,
            "routers answering True, False and None": ROUTER_ANSWERS, "apps without models": MODEL_LESS,
            "a squashed migration half applied": SQUASHED_HALF_APPLIED, "run_before": RUN_BEFORE,
            "RunPython through another alias": OTHER_ALIAS, "an app added later": APP_ADDED_LATER,
            "search_path and other OPTIONS": SEARCH_PATHS, "an alias with its own NAME and TEST": CUSTOM_NAME,
            "a migration that sees what its alias has applied": SEEN_STATE, "search_path in PGOPTIONS": FROM_PGOPTIONS}


# -- the comparison -------------------------------------------------------------------------------------

SKIP_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast', 'sidecar')"
SNAPSHOT = {
    "columns": "SELECT table_schema, table_name, column_name, data_type, is_nullable, column_default, is_identity"
               f" FROM information_schema.columns WHERE table_schema NOT IN {SKIP_SCHEMAS} ORDER BY 1, 2, 3",
    "indexes": f"SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes WHERE schemaname NOT IN"
               f" {SKIP_SCHEMAS} ORDER BY 1, 2, 3",
    "constraints": "SELECT n.nspname, r.relname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN"
                   " pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = c.connamespace"
                   f" WHERE n.nspname NOT IN {SKIP_SCHEMAS} ORDER BY 1, 2, 3",
}


def snapshot(project: Project, database: str) -> dict[str, Any]:
    """What a database holds, as comparable lists: schema, history rows, content types, permissions, data."""
    conn = project.server.connect(database)
    try:
        with conn.cursor() as cur:
            found: dict[str, Any] = {}
            for key, sql in SNAPSHOT.items():
                cur.execute(sql)
                found[key] = cur.fetchall()
            cur.execute(f"SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                        f" WHERE c.relkind = 'r' AND n.nspname NOT IN {SKIP_SCHEMAS} ORDER BY 1, 2")
            for schema, table in cur.fetchall():
                name = f'"{schema}"."{table}"'
                if table == "django_migrations":
                    cur.execute(f"SELECT app, name FROM {name} ORDER BY id")
                elif table == "django_content_type":
                    cur.execute(f"SELECT app_label, model FROM {name} ORDER BY 1, 2")
                elif table == "auth_permission":
                    cur.execute(f"SELECT t.app_label, t.model, p.codename, p.name FROM {name} p JOIN"
                                f' "{schema}".django_content_type t ON t.id = p.content_type_id ORDER BY 1, 2, 3')
                else:
                    cur.execute(f"SELECT t::text FROM {name} t ORDER BY 1")
                found[f"{schema}.{table}"] = cur.fetchall()
            return found
    finally:
        conn.close()


@dataclass
class Sides:
    project: Project
    variant: Variant
    base: str

    def database(self, side: str, alias: str) -> str:
        return f"{self.base}{side}_{self.variant.aliases[alias]}"

    def env(self, side: str) -> dict[str, str]:
        return {"DJ_PREFIX": f"{self.base}{side}", "DB_HOST": "127.0.0.1", "DB_PORT": str(self.project.server.port),
                "DB_USER": SUPERUSER, "DB_PASSWORD": PASSWORD, "PYTHON": sys.executable,
                **self.variant.env(f"{self.base}{side}")}

    def manage(self, side: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=self.project.root,
                              env=self.project.env(**self.env(side)), capture_output=True, text=True, check=False)
        self.project.outputs.append(done.stdout + done.stderr)
        return done

    def reference(self) -> None:
        """`manage.py migrate --database=ALIAS` per alias, in DATABASES order, after its fakes."""
        for alias in self.variant.aliases:
            for fake_alias, app_label, to in self.variant.fakes:
                if fake_alias == alias:
                    self.check(self.manage("r", "migrate", app_label, to, "--fake", f"--database={alias}", "--noinput"))
            self.check(self.manage("r", "migrate", f"--database={alias}", "--noinput"))

    def sidecar(self) -> None:
        ran = self.project.run("run", "--once", **self.env("s"))
        assert ran.code == 0, ran.out

    @staticmethod
    def check(done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == 0, done.stdout + done.stderr

    def assert_same(self) -> None:
        for alias in self.variant.aliases:
            want, got = (snapshot(self.project, self.database(side, alias)) for side in ("r", "s"))
            assert want.keys() == got.keys(), alias
            for key in want:
                assert got[key] == want[key], f"alias {alias!r}, {key}"

    def assert_framework_agrees(self) -> None:
        checks = [subprocess.Popen([sys.executable, "manage.py", "migrate", "--check", f"--database={alias}"],
                                   cwd=self.project.root, env=self.project.env(**self.env("s")),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for alias in self.variant.aliases]
        for alias, check in zip(self.variant.aliases, checks, strict=True):
            out, _ = check.communicate(timeout=120)
            assert check.returncode == 0, f"migrate --check --database={alias}: {out.decode()}"
        status = self.project.run("status", **self.env("s"))
        assert status.code == 0, status.out
        preview = self.project.run("plan", **self.env("s"))
        assert preview.code == 0, preview.out
        again = self.project.run("run", "--once", **self.env("s"))
        assert again.code == 0, again.out
        assert [e["reason"] for e in again.event("step.skipped")] == ["no Django migration pending on any alias"]
        assert not again.event("django.migration.applied")


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text).lstrip() if not path.endswith("settings.py") else text)


def plan(variant: Variant, databases: dict[str, str]) -> str:
    tables = "".join(f'[databases.{name}]\nurl = "postgresql://${{DB_USER}}@${{DB_HOST}}:${{DB_PORT}}/${{DJ_PREFIX}}_'
                     f'{suffix}"\npassword = "${{DB_PASSWORD}}"\n\n' for name, suffix in databases.items())
    return (f'name = "differential"\n\n[serve]\ninterval = "200ms"\n\n{tables}[[steps]]\nname = "django"\n'
            f'django = "proj.settings"\npython = "${{PYTHON}}"\n{variant.plan_step}\n')


def prepare(project: Project, variant: Variant) -> Sides:
    sides = Sides(project, variant, project.names["default"].removesuffix("_default"))
    write(project.root, variant.files)
    databases = {alias if alias == suffix else suffix: suffix for alias, suffix in variant.aliases.items()}
    project.write("sidecar.toml", plan(variant, databases))
    roles(project)
    for side in ("r", "s"):
        for alias in variant.aliases:
            name = sides.database(side, alias)
            project.server.query("postgres", f'CREATE DATABASE "{name}"')
            variant.setup(project, name)
    return sides


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_the_django_step_leaves_what_manage_py_migrate_leaves(project: Project, variant: Variant) -> None:
    sides = prepare(project, variant)
    for command in variant.before:
        if command == ("round",):
            sides.reference()
            sides.sidecar()
            continue
        for side in ("r", "s"):
            sides.check(sides.manage(side, *command, "--noinput"))
    if variant.before:
        sides.assert_same()
    write(project.root, variant.then)
    sides.reference()
    sides.sidecar()
    sides.assert_same()
    sides.assert_framework_agrees()


def test_the_example_leaves_what_its_commands_leave(project: Project) -> None:
    """examples/django: its plan's fakes, then migrate, per alias; as `manage.py` does it by hand."""
    shutil.copytree(EXAMPLE, project.root, dirs_exist_ok=True)
    variant = Variant({"default": "default", "materials_db": "materials", "results_db": "results"}, {},
                      fakes=(("materials_db", "simulation", "0003"), ("results_db", "simulation", "0003")),
                      env=lambda prefix: {"DEFAULT_DB": f"{prefix}_default", "MATERIALS_DB": f"{prefix}_materials",
                                          "RESULTS_DB": f"{prefix}_results"})
    sides = Sides(project, variant, project.names["default"].removesuffix("_default"))
    for side in ("r", "s"):
        for alias in variant.aliases:
            project.server.query("postgres", f'CREATE DATABASE "{sides.database(side, alias)}"')
    sides.reference()
    sides.sidecar()
    sides.assert_same()
    sides.assert_framework_agrees()
    assert json.loads(project.health.read_text())["status"] == "healthy"


class Counting(psycopg2.extensions.cursor):
    executed = 0

    def execute(self, query: Any, vars: Any = None) -> None:
        Counting.executed += 1
        super().execute(query, vars)


def test_serving_rechecks_each_alias_where_django_keeps_it_with_one_query(project: Project) -> None:
    """The re-check (and status, and verification: kinds.django.state) and the run's `todo` read each alias's
    own table, with one query each."""
    sides = prepare(project, SEARCH_PATHS)
    process = project.start("run", **sides.env("s"), LOG_LEVEL="debug")
    try:
        wait_for(project.is_healthy, timeout=90)
        project.server.query(sides.database("s", "tenant"), "DELETE FROM app.django_migrations WHERE app = 'shop'")
        wait_for(lambda: json.loads(project.health.read_text())["status"] == "unhealthy", timeout=30)
        assert "tenant: pending Django shop 0001_initial (alias 'tenant')" in json.loads(
            project.health.read_text())["reason"]
    finally:
        result, _ = project.stop(process)
    assert len(result.event("command.started")) == 1  # Django ran once, before serving began
    for alias, schema in (("default", "shop"), ("ops", "ops"), ("owner", ROLE), ("tenant", "app")):
        database = sides.database("s", alias)
        rows = project.server.query(database, f"SELECT app, name FROM {schema}.django_migrations ORDER BY id")
        migrations = (*(DjangoMigration(str(a), str(n)) for a, n in rows), DjangoMigration("shop", "0001_initial"))
        where, problems = Where.of(alias, connection(alias))
        assert not problems
        step = DjangoStep("django", "proj.settings", sys.executable, project.root, (), 60.0, (), (), (), None,
                          (DjangoAlias(alias, alias, migrations, where),))
        conn = psycopg2.connect(**project.server.keywords(database), cursor_factory=Counting)
        try:
            Counting.executed = 0
            entries = state(conn, step, alias, None)  # type: ignore[arg-type]
            assert Counting.executed == 1, alias
            work = todo(Context(None, {alias: conn}, {}), step)  # type: ignore[arg-type]
            assert Counting.executed == 2, alias
        finally:
            conn.close()
        pending = [name for e in entries for name in e.pending]
        assert pending == ([] if alias != "tenant" else ["0001_initial"]), alias
        assert work.pending == {alias: [f"shop.{name}" for name in pending]}


def connection(alias: str) -> dict[str, str]:
    """What the child reports of the search-path variant's aliases (django_child.connection_of)."""
    options = {"default": "-c search_path=shop", "ops": "--search-path=ops,public -c statement_timeout=60000"}
    return {"dbname": "", "user": TENANT if alias == "tenant" else SUPERUSER, "options": options.get(alias, ""),
            "options_from": "OPTIONS['options']" if alias in options else "PGOPTIONS",
            "assume_role": ROLE if alias == "owner" else "", "service": ""}
