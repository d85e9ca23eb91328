"""Campaigns 5, 6, 7: bad plans, bad migration files, hostile identifiers."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.errors import PlanError
from sidecar.plan import load_plan
from tests.chaos.conftest import FULL, record
from tests.integration.conftest import Project

VALID = """name = "p"
[wait]
timeout = "5s"
[databases.default]
url = "postgresql://u:canary-pw@127.0.0.1:{port}/d"
create = true
[[steps]]
name = "core"
database = "default"
sql = "m"
[verify.default]
tables = ["t"]
"""
EXAMPLES = 2000 if FULL else 150

toml_scalars = st.one_of(st.text(max_size=12), st.integers(-5, 10**6), st.booleans(), st.floats(allow_nan=False),
                         st.lists(st.text(max_size=5), max_size=3))
keys = st.sampled_from(["name", "wait", "timeout", "databases", "default", "url", "create", "steps", "sql",
                        "database", "command", "baseline", "group", "verify", "tables", "lock", "serve", "x"])


class Canary:
    """A TCP listener that counts connections: a plan that fails validation must never reach it."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture(scope="module")
def canary() -> Canary:
    return Canary()


def mutate(text: str, data: st.DataObject) -> str:
    """Delete, duplicate or replace a line, or a value, of a valid plan."""
    lines = text.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    action = data.draw(st.sampled_from(["delete", "duplicate", "value", "key", "garble"]))
    if action == "delete":
        del lines[i]
    elif action == "duplicate":
        lines.insert(i, lines[i])
    elif action == "value" and "=" in lines[i]:
        key = lines[i].split("=")[0].strip()
        value = data.draw(toml_scalars)
        lines[i] = f"{key} = {_toml(value)}"
    elif action == "key" and "=" in lines[i]:
        lines[i] = f"{data.draw(keys)} = {lines[i].split('=', 1)[1]}"
    else:
        j = data.draw(st.integers(0, max(0, len(lines[i]) - 1)))
        lines[i] = lines[i][:j] + data.draw(st.sampled_from(list("[]{}\"'=$#\\\n"))) + lines[i][j + 1:]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def outcome(path: Path) -> str:
    """'ok', or 'plan error' whose every problem names the file; anything else fails the test."""
    try:
        load_plan(path, {})
    except PlanError as exc:
        assert exc.exit_code == 2
        assert all(p.startswith(str(path)) for p in exc.problems), exc.problems
        return "plan error"
    return "ok"


def test_bad_plans_are_reported_never_crash(tmp_path: Path, canary: Canary) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_t.sql").write_text("CREATE TABLE t (id int);")
    valid = VALID.format(port=canary.port)
    seen: dict[str, int] = {}
    invalid: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def campaign(data: st.DataObject) -> None:
        if data.draw(st.booleans()):
            text = mutate(valid, data)
        else:  # random TOML documents from the plan's own vocabulary
            doc = data.draw(st.dictionaries(keys, st.one_of(toml_scalars, st.dictionaries(keys, toml_scalars,
                                                                                            max_size=4)),
                                            max_size=6))
            text = "\n".join(f"{k} = {_toml(v)}" for k, v in doc.items() if not isinstance(v, dict))
            text += "".join(f"\n[{k}]\n" + "\n".join(f"{kk} = {_toml(vv)}" for kk, vv in v.items())
                            for k, v in doc.items() if isinstance(v, dict))
        path = tmp_path / "sidecar.toml"
        path.write_text(text)
        result = outcome(path)
        seen[result] = seen.get(result, 0) + 1
        if result == "plan error" and len(invalid) < 20:
            invalid.append(text)

    campaign()
    # A sample of the invalid ones through the real CLI: exit 2, no traceback, no connection.
    failures = []
    for text in invalid:
        (tmp_path / "sidecar.toml").write_text(text)
        done = subprocess.run([sys.executable, "-m", "sidecar", "run", "--once", str(tmp_path / "sidecar.toml")],
                              capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "LOG_FORMAT": "json"},
                              check=False)
        if done.returncode != 2 or "Traceback" in done.stdout + done.stderr or "canary-pw" in done.stdout:
            failures.append(f"exit {done.returncode}: {done.stdout[-300:]}{done.stderr[-300:]}")
    if canary.connections:
        failures.append(f"the canary server saw {canary.connections} connections")
    assert seen.get("plan error", 0) > EXAMPLES // 4, seen
    record("bad plans (hypothesis: random TOML and mutations of a valid plan)", EXAMPLES, failures,
           "success or exit 2 naming file and key; never a traceback; no connection before validation")


BAD_FILES: dict[str, tuple[bytes, str]] = {
    # name: (content, expected outcome: "applies" or the message of the plan error)
    "0001_bom.sql": (b"\xef\xbb\xbfCREATE TABLE bom (id int);", "applies"),
    "0002_crlf.sql": (b"CREATE TABLE crlf (id int);\r\nINSERT INTO crlf VALUES (1);\r\n", "applies"),
    "0003_dollar.sql": (b"CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n"
                        b"DO $x$ BEGIN PERFORM f(); PERFORM 1; END $x$;", "applies"),
    "0007_gap.sql": (b"CREATE TABLE after_gap (id int);", "applies"),
}
REFUSED: dict[str, tuple[bytes, str]] = {
    "0001_utf8.sql": (b"SELECT '\xff\xfe';", "not valid UTF-8"),
    "0001_empty.sql": (b"", "contains no SQL statement"),
    "0001_comments.sql": (b"-- only\n/* comments */\n", "contains no SQL statement"),
    "0001_commit.sql": (b"CREATE TABLE a (id int);\nCOMMIT;", "COMMIT would end the migration's transaction"),
    "0001_begin.sql": (b"BEGIN;\nCREATE TABLE a (id int);", "BEGIN would end the migration's transaction"),
}


def test_bad_migration_files(project: Project) -> None:
    failures = []
    project.plan('[databases.default]\nurl = "${DEFAULT_DATABASE_URL}"\ncreate = true\n'
                 '[[steps]]\nname = "core"\ndatabase = "default"\nsql = "m"\n')
    for name, (content, expected) in REFUSED.items():
        folder = project.root / "m"
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        (folder / name).write_bytes(content)
        result = project.run("validate")
        if result.code != 2 or expected not in result.out or name not in result.out:
            failures.append(f"{name}: exit {result.code}: {result.out[-300:]}")
    for old in (project.root / "m").iterdir():
        old.unlink()
    (project.root / "m" / "0001_x.sql").write_text("SELECT 1;")
    (project.root / "m" / "01_x.sql").write_text("SELECT 1;")
    duplicate = project.run("validate")
    if duplicate.code != 2 or "version 01 is also used by 0001_x.sql" not in duplicate.out:
        failures.append(f"two files with one version: {duplicate.out[-300:]}")
    for old in (project.root / "m").iterdir():
        old.unlink()
    for name, (content, _) in BAD_FILES.items():
        (project.root / "m" / name).write_bytes(content)
    big = "".join(f"INSERT INTO big VALUES ({i}, '{'x' * 80}');\n" for i in range(110_000))
    (project.root / "m" / "0008_big.sql").write_text("CREATE TABLE big (i int, s text);\n" + big)
    result = project.run("run", "--once", timeout=300)
    if result.code != 0:
        failures.append(f"valid odd files: exit {result.code}: {result.out[-500:]}")
    else:
        if project.query("default", "SELECT count(*) FROM big") != [(110_000,)]:
            failures.append("the 10 MB file did not apply in full")
        if project.query("default", "SELECT f()") != [(1,)]:
            failures.append("dollar-quoted bodies did not apply")
    record("bad migration files (BOM, CRLF, invalid UTF-8, empty, comments only, $$ bodies, 10 MB,"
           " COMMIT/BEGIN, version gap, duplicate version)", len(REFUSED) + len(BAD_FILES) + 2, failures,
           "each file applies as written or is refused at validation with its name and line;"
           " COMMIT and BEGIN in a transactional file are refused")


HOSTILE_NAMES = ['we"ird db', "it's", "spaced name", "ünïcødé_데이터", "x; DROP DATABASE postgres; --",
                 "a" * 63]


def test_hostile_identifiers(project: Project) -> None:
    from urllib.parse import quote

    failures = []
    for name in HOSTILE_NAMES:
        url = project.server.url(quote(name, safe=""))
        project.plan(f'[databases.default]\nurl = "{url}"\ncreate = true\n'
                     '[[steps]]\nname = "core"\ndatabase = "default"\nsql = "m"\n'
                     '[verify.default]\ntables = ["t", "public.\\"Odd Table\\""]\n')
        project.write("m/0001_t.sql", 'CREATE TABLE t (id int); CREATE TABLE "Odd Table" (id int);')
        result = project.run("run", "--once")
        exists = project.server.query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if result.code != 0 or not exists:
            failures.append(f"{name!r}: exit {result.code}, created {bool(exists)}: {result.out[-300:]}")
        elif project.server.query(name, "SELECT to_regclass('t') IS NOT NULL") != [(True,)]:
            failures.append(f"{name!r}: table t is gone")
    project.plan('[databases.default]\nurl = "${DEFAULT_DATABASE_URL}"\n[[steps]]\ndatabase = "default"\n'
                 'sql = "m"\n[verify.default]\ntables = ["t; DROP TABLE t; --"]\n')
    result = project.run("validate")
    if result.code != 2 or "verify.default.tables: 't; DROP TABLE t; --' is not a table name" not in result.out:
        failures.append(f"SQL as a table name: exit {result.code}: {result.out[-300:]}")
    too_long = "b" * 64
    project.plan(f'[databases.default]\nurl = "{project.server.url(too_long)}"\ncreate = true\n'
                 '[[steps]]\nname = "core"\ndatabase = "default"\nsql = "m"\n')
    result = project.run("validate")
    if result.code != 2 or "over 63 bytes" not in result.out:
        failures.append(f"64-byte name: exit {result.code}: {result.out[-300:]}")
    record("hostile identifiers (quotes, spaces, unicode, SQL in names, 63 and 64 bytes)",
           len(HOSTILE_NAMES) + 2, failures,
           "names are quoted or passed as parameters, never spliced into SQL; a table name that is not"
           " one, or a name over 63 bytes, is refused at validation")
