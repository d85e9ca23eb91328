"""Failover: the primary dies mid-plan or while serving, its standby is promoted, and a plan whose
URL lists both hosts (target_session_attrs=read-write) finishes, or recovers, on the new primary."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.sqlstate import NO_WRITABLE_HOST
from tests.integration.conftest import Project, wait_for
from tests.processes import reaped
from tests.replication import Replicated, replicated

SLEEP = 4  # seconds the middle migration runs, for the primary to die under it


@pytest.fixture
def pair(pg_bindir: Path, pg_template: Path) -> Iterator[Replicated]:
    with replicated(pg_bindir, pg_template) as pair:
        yield pair


@pytest.fixture
def project(tmp_path: Path, pair: Replicated) -> Iterator[Project]:
    """A plan on both hosts, primary first; `project.server` is the primary (then dead)."""
    project = Project(tmp_path, pair.primary)
    project.multi_host = pair.multi_host_url(project.names["default"])  # type: ignore[attr-defined]
    yield project
    project.assert_no_password()


def plan(project: Project, serve: str = "") -> None:
    project.plan(f"""
        [wait]
        timeout = "30s"
        {serve}
        [databases.default]
        url = "${{DEFAULT_DATABASE_URL}}"
        create = true
        [[steps]]
        name = "core"
        database = "default"
        sql = "migrations"
        [verify.default]
        tables = ["a", "b", "c"]
        """)
    # Every migration adds a row to a ledger, so an effect that happened twice shows.
    project.write("migrations/0001_a.sql", "CREATE TABLE ledger (version text); CREATE TABLE a (id int);"
                                           " INSERT INTO ledger VALUES ('0001');")
    project.write("migrations/0002_b.sql", f"SELECT pg_sleep({SLEEP}); CREATE TABLE b (id int);"
                                           " INSERT INTO ledger VALUES ('0002');")
    project.write("migrations/0003_c.sql", "CREATE TABLE c (id int); INSERT INTO ledger VALUES ('0003');")


def env(project: Project) -> dict[str, str]:
    return {"DEFAULT_DATABASE_URL": project.multi_host}  # type: ignore[attr-defined]


def test_a_run_cut_by_failover_exits_3_and_a_rerun_finishes_on_the_new_primary(project: Project,
                                                                              pair: Replicated) -> None:
    plan(project)
    with reaped(project.start("run", "--once", **env(project))) as process:
        wait_for(lambda: project.running("pg_sleep"), timeout=20, interval=0.02)
        pair.wait_replayed()  # 0001 reached the standby (async commit: it could also have been lost)
        pair.kill_primary()
        cut = project.finish(process)
    assert cut.code == 3, cut.out
    assert cut.last["event"] == "sidecar.failed"
    assert "connection" in str(cut.last["error"]) and cut.last["database"] == "default", cut.last
    assert [e["version"] for e in cut.event("migration.applied")] == ["0001"]

    # Restarted before the promotion: it waits (no writable host yet), then finishes there.
    with reaped(project.start("run", "--once", **env(project))) as rerun:
        time.sleep(1.5)
        assert rerun.poll() is None
        pair.promote()
        result = project.finish(rerun)
    assert result.code == 0, result.out
    reasons = {e["reason"] for e in result.event("wait.retry_scheduled")}
    assert f"connection refused; {NO_WRITABLE_HOST}" in reasons, reasons
    assert [e["version"] for e in result.event("migration.applied")] == ["0002", "0003"]

    new_primary = pair.standby
    dbname = project.names["default"]
    assert new_primary.query(dbname, "SELECT version, count(*) FROM sidecar.migrations"
                                     " GROUP BY version ORDER BY version") == [("0001", 1), ("0002", 1), ("0003", 1)]
    assert new_primary.query(dbname, "SELECT version, count(*) FROM ledger GROUP BY version ORDER BY version") == [
        ("0001", 1), ("0002", 1), ("0003", 1)]
    assert new_primary.query(dbname, "SELECT count(*) FROM pg_tables WHERE tablename IN ('a', 'b', 'c')") == [(3,)]


def health(project: Project) -> dict[str, object]:
    return dict(json.loads(project.health.read_text()))


@pytest.mark.parametrize("attrs", [
    "read-write",
    # libpq takes the first host that answers, the standby once the primary is gone: the re-check
    # must see that it takes no writes (wait.read_only), as the run's wait does.
    "any",
])
def test_a_serving_sidecar_is_unhealthy_without_a_primary_and_healthy_after_promotion(project: Project,
                                                                                   pair: Replicated,
                                                                                   attrs: str) -> None:
    project.multi_host = pair.multi_host_url(project.names["default"], attrs=attrs)  # type: ignore[attr-defined]
    plan(project, '[serve]\ninterval = "300ms"')
    project.write("migrations/0002_b.sql", "CREATE TABLE b (id int); INSERT INTO ledger VALUES ('0002');")
    with reaped(project.start("run", **env(project))) as process:
        wait_for(project.is_healthy, timeout=30)
        pair.wait_replayed()
        pair.kill_primary()
        wait_for(lambda: health(project)["status"] == "unhealthy", timeout=10)
        time.sleep(1)  # several re-checks with no writable host
        document = health(project)
        assert document["status"] == "unhealthy", document
        assert "unreachable" in str(document["reason"]) or "read-only" in str(document["reason"]), document
        pair.promote()
        promoted = time.monotonic()
        wait_for(lambda: health(project)["status"] == "healthy", timeout=10)
        assert time.monotonic() - promoted < 3
        result, _ = project.stop(process)
    assert result.code == 0, result.out
    assert len(result.event("serve.unhealthy")) == 1 and len(result.event("serve.recovered")) == 1
