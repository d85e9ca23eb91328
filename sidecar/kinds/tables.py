"""Each step kind's [[steps]] table: its keys, types, defaults and meanings (shape.py's terms).

Here, apart from the kinds, so that reading a plan knows every kind's keys while importing only the kinds its
steps are of (kinds/__init__.py).
"""

from __future__ import annotations

from .. import shape
from ..shape import (
                     DERIVED,
                     EMPTY,
                     FORMATS,
                     REQUIRED,
                     STEP_DATABASE,
                     STEP_NAME,
                     STEP_TIMEOUT,
                     Key,
                     Table,
                     duration,
                     guard_key,
                     python_key,
)

SQL = Table("steps (sql)", "A folder of SQL migrations applied to one database, each file in one transaction"
              " with its history row.", (
    Key("name", "string", STEP_NAME, DERIVED, default_text="`DATABASE: FOLDER`"),
    STEP_DATABASE,
    Key("sql", "folders", "a folder of migration files (`<version>_<name>.sql` in sidecar's format), relative to"
        " the plan's folder; or a list of folders, read as one folder (Flyway's `locations`: one version order);"
        " for a Flyway folder, also the project's `flyway.conf` or `flyway.toml`, whose locations, table, schemas,"
        " placeholders, baseline and naming settings then apply", REQUIRED, example='"migrations/default"'),
    Key("format", "string", "the folder's tool: its file names, what part of a file runs, and whose history is"
        " adopted (see [Coming from dbmate, Flyway, golang-migrate or goose](other-tools.md))", "sidecar",
        values=FORMATS),
    Key("baseline", "string", "record versions up to this one as applied without running them", None,
        default_text="none", pattern=shape.VERSION, example='"0003"'),
    Key("baseline_requires", "table names", "tables that must exist before the baseline is recorded; only with"
        " `baseline`", (), pattern=shape.TABLE_NAME, example='["users"]'),
    Key("group", "boolean", "apply all pending files of the step in one transaction: all or none", False),
    Key("tool_table", "string", "the folder's tool's history table, `name` or `schema.name`, as that tool was"
        " configured (dbmate's `--migrations-table`, golang-migrate's `x-migrations-table`, Flyway's `table` and"
        " `defaultSchema`, goose's `-table`)", None, default_text="the tool's own: `schema_migrations`,"
        " `flyway_schema_history`, `goose_db_version`",
        pattern=shape.TABLE_NAME, example='"ops.schema_migrations"'),
    Key("placeholders", "environment", "a Flyway folder: values of its `${placeholders}`, over the configuration's",
        shape.EMPTY, default_text="none", example='{ schema = "app" }'),
    Key("keep_tool_table", "boolean", "in a `dbmate`, `golang-migrate` or `goose` folder, keep that tool's"
        " history table as the tool keeps it (made if missing, a row for each file applied), so the tool can"
        " take over again", True),
    duration("lock_timeout", "`guard.lock_timeout`, for this step's migrations", DERIVED,
             default_text="`guard.lock_timeout`"),
    duration("statement_timeout", "`guard.statement_timeout`, for this step's migrations", DERIVED,
             default_text="`guard.statement_timeout`"),
), selector="sql")
COMMAND = Table("steps (command)", "A program run on every run, without a shell, in the plan's folder, with the"
              " step's database in `DATABASE_URL` and `PG*`.", (
    Key("name", "string", STEP_NAME, DERIVED, default_text="the command, its arguments joined by spaces"),
    STEP_DATABASE,
    Key("command", "argv", "the program and its arguments, run without a shell", REQUIRED,
        example='["python", "manage.py", "migrate"]'),
    STEP_TIMEOUT,
    Key("cwd", "string", "the working folder, relative to the plan's folder", ".",
        default_text="the plan's folder"),
    Key("env", "environment", "extra environment for the command", EMPTY,
        example='{ DJANGO_SETTINGS_MODULE = "app.settings" }'),
    Key("skip_if", "string", "SQL on the step's database: the step is skipped when it returns `true` (a table it"
        " reads that does not exist yet counts as `false`)", None, default_text="none"),
    guard_key("the command"),
), selector="command")
DJANGO_FAKE = Table("steps.fake", "Record an app's migrations up to one as applied on an alias without running"
             " them, while that one is not applied (what `migrate APP 0003 --fake` did, once).", (
    Key("alias", "text", "the alias in the project's `DATABASES`", REQUIRED, example='"results_db"'),
    Key("app", "text", "the Django app", REQUIRED, example='"simulation"'),
    Key("to", "text", "the last migration to record: its name, or a prefix only it has", REQUIRED,
        example='"0003"'),
    Key("if_tables_exist", "boolean", "record them only when every table those migrations create on the alias"
        " exists; when none exists apply them, when only some, stop (exit 4)", False),
))
DJANGO = Table("steps (django)", "A Django project's migrations on every alias of its `DATABASES`, with Django"
              " loaded once, in one child (see [Django](django.md)).", (
    Key("name", "string", STEP_NAME, DERIVED, default_text="`django SETTINGS`"),
    Key("django", "string", "the settings module (`DJANGO_SETTINGS_MODULE`), imported from `cwd`", REQUIRED,
        pattern=shape.PYTHON_MODULE, example='"mysite.settings"'),
    python_key("Django"),
    Key("cwd", "string", "the child's folder (on `sys.path`), relative to the plan's folder", ".",
        default_text="the plan's folder"),
    Key("env", "environment", "extra environment for the child", EMPTY),
    STEP_TIMEOUT,
    Key("aliases", "environment", "alias = plan database, for aliases whose plan database has another name; an"
        " alias named like a plan database is that database", EMPTY,
        example='{ materials_db = "materials", results_db = "results" }'),
    Key("exclude", "strings", "aliases of `DATABASES` that this plan leaves alone on purpose", (),
        example='["legacy"]'),
    Key("fake", "array of tables", "migrations to record as applied without running them (see"
        " [Fakes](django.md#fakes))", (),
        tables=(DJANGO_FAKE,)),
    guard_key("Django"),
), selector="django")
ALEMBIC = Table("steps (alembic)", "`alembic upgrade head` on one database, in one child with the project's"
              " Python (see [Alembic](alembic.md)).", (
    Key("name", "string", STEP_NAME, DERIVED, default_text="`DATABASE: alembic`"),
    STEP_DATABASE,
    Key("alembic", "text", "the project's `alembic.ini` or `pyproject.toml`, relative to the plan's folder; the"
        " child runs in its folder", REQUIRED, example='"app/alembic.ini"'),
    python_key("Alembic"),
    Key("env", "environment", "extra environment for the child", EMPTY),
    STEP_TIMEOUT,
    guard_key("Alembic"),
), selector="alembic")
# In the order `validate` names them when a step has none or several.
TABLES: tuple[Table, ...] = (SQL, COMMAND, DJANGO, ALEMBIC)
