"""The health file and the probe: fresh, stale, unhealthy, missing, unreadable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sidecar import health, probe


def test_fresh_healthy_file_probes_healthy_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    health.write(path, health.HEALTHY, 1.0, plan="p", ready_at="now")
    assert probe.probe(path)[0] is True
    document = json.loads(path.read_text())
    assert probe.probe(path, now=document["expires_at"] + 0.01) == (
        False, f"stale: not refreshed since {document['updated_at']} (sidecar hung or killed?)")


def test_unhealthy_missing_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    assert probe.probe(path)[0] is False
    health.write(path, health.UNHEALTHY, 1.0, reason="default: unreachable")
    assert probe.probe(path) == (False, "unhealthy: default: unreachable")
    path.write_text("{not json")
    assert probe.probe(path)[0] is False


def test_a_starting_file_is_not_healthy_not_failed_and_goes_stale_when_not_refreshed(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    health.write(path, health.STARTING, 5.0, reason="step 'core' on database 'default': 0005_slow.sql")
    assert probe.probe(path) == (False, "starting: step 'core' on database 'default': 0005_slow.sql")
    document = json.loads(path.read_text())
    assert probe.probe(path, now=document["expires_at"] + 0.01)[1].startswith("stale: ")


def test_alive_passes_while_the_file_is_fresh_whatever_the_database_says(tmp_path: Path) -> None:
    """Kubernetes' livenessProbe: restart a hung sidecar, never one whose database is down."""
    path = tmp_path / "health.json"

    def probe_cli(*args: str) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "sidecar", "probe", str(path), *args],
                              capture_output=True, text=True, check=False)
        return done.returncode, done.stdout

    for status in (health.HEALTHY, health.STARTING, health.UNHEALTHY):
        health.write(path, status, 5.0, reason="app: unreachable")
        assert probe_cli("--alive")[0] == 0, status
        assert probe.probe(path, now=json.loads(path.read_text())["expires_at"] + 1, alive=True)[1].startswith(
            "stale: ")
    assert probe_cli()[0] == 1  # unhealthy: not ready, but alive
    health.write(path, health.FAILED, 5.0, reason="step failed")
    assert probe_cli("--alive") == (1, "failed: step failed\n")
    path.unlink()
    assert probe_cli("--alive")[0] == 1


def test_probe_wait_keeps_waiting_while_the_run_is_starting(tmp_path: Path) -> None:
    """A check that starts during the run answers the moment the run is healthy."""
    path = tmp_path / "health.json"
    health.write(path, health.STARTING, 5.0, reason="running")
    process = subprocess.Popen([sys.executable, "-m", "sidecar", "probe", str(path), "--wait", "5s"],
                               stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert process.poll() is None  # still waiting on `starting`
    written = time.monotonic()
    health.write(path, health.HEALTHY, 1.0, plan="p")
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0, out
    assert time.monotonic() - written < 2


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    for _ in range(3):
        health.write(path, health.HEALTHY, 1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]


def test_the_file_is_readable_by_others_whatever_the_umask_and_no_link_is_followed(tmp_path: Path) -> None:
    """The probe may run as another user (docker exec); a link planted at a temporary name is not
    written through."""
    path = tmp_path / "health.json"
    previous = os.umask(0o077)
    try:
        health.write(path, health.HEALTHY, 5, plan="p")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
    target = tmp_path / "elsewhere"
    (tmp_path / f".health.json.tmp-{os.getpid()}-{next(health._TEMP_SERIAL) + 1}").symlink_to(target)
    with pytest.raises(OSError):
        health.write(path, health.HEALTHY, 5, plan="p")
    assert not target.exists() and json.loads(path.read_text())["plan"] == "p"


def test_prepare_removes_what_a_write_cut_short_by_a_kill_left_and_only_that(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    health.write(path, health.HEALTHY, 5)
    for name in (".health.json.tmp-1-0", ".health.json.tmp-77-3", ".other.json.tmp-1-0", "keep.txt"):
        (tmp_path / name).write_text("{")
    health.prepare(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.tmp-1-0", "keep.txt"]


def test_prepare_removes_a_stale_file_and_rejects_an_unusable_folder(tmp_path: Path) -> None:
    path = tmp_path / "run" / "health.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"status": "healthy", "expires_at": time.time() + 999}))
    health.prepare(path)
    assert not path.exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        health.prepare(blocker / "health.json")


@pytest.mark.parametrize("extra", ["", ", '--wait', '10ms'"])
def test_probe_imports_nothing_heavy(tmp_path: Path, extra: str) -> None:
    code = (f"import sys; from sidecar.cli import main; rc = main(['probe', sys.argv[1]{extra}]);"
            " heavy = {'psycopg2', 'structlog', 'tenacity', 'argparse'} & set(sys.modules); print(sorted(heavy), rc)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "none.json")], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().endswith("[] 1")


def _probe_process(path: Path) -> subprocess.CompletedProcess[str]:
    """`sidecar probe PATH` as Docker runs it, in an address space too small to read 1 GiB into."""
    import resource

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))

    return subprocess.run([sys.executable, "-m", "sidecar", "probe", str(path)], capture_output=True, text=True,
                          timeout=3, preexec_fn=limit_memory, check=False)


def _hostile(kind: str, path: Path) -> None:
    import os

    if kind == "fifo":
        os.mkfifo(path)  # nobody ever writes: a blocking open would hang forever
    elif kind == "1 GiB":
        with open(path, "wb") as f:
            f.truncate(1 << 30)  # sparse: costs no disk, but a naive read allocates it all
    elif kind == "deep nesting":
        path.write_text("[" * 200_000)
    elif kind == "a list":
        path.write_text('[{"status": "healthy"}]')
    elif kind == "a string":
        path.write_text('"healthy"')
    elif kind == "not UTF-8":
        path.write_bytes(b'{"status": "\xff"}')
    elif kind == "a folder":
        path.mkdir()
    elif kind == "a multi-line reason":
        path.write_text(json.dumps({"status": "failed", "reason": "line one\nline two"}))


@pytest.mark.parametrize("kind", ["fifo", "1 GiB", "deep nesting", "a list", "a string", "not UTF-8", "a folder",
                                  "a multi-line reason"])
def test_probe_answers_unhealthy_in_one_line_whatever_is_at_the_path(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "health.json"
    _hostile(kind, path)
    result = _probe_process(path)  # TimeoutExpired (3 s, the healthcheck's budget) fails the test
    assert result.returncode == 1, result
    assert result.stderr == "", result.stderr  # no traceback
    assert len(result.stdout.splitlines()) == 1, result.stdout


def test_probe_wait_answers_as_soon_as_the_file_appears(tmp_path: Path) -> None:
    """A check that is already running when the plan finishes answers then, not at the next interval."""
    path = tmp_path / "health.json"
    process = subprocess.Popen([sys.executable, "-m", "sidecar", "probe", str(path), "--wait", "5s"],
                               stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    written = time.monotonic()
    health.write(path, health.HEALTHY, 1.0, plan="p")
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0, out
    assert time.monotonic() - written < 2  # well before the 5 s it was allowed to wait


def test_probe_wait_gives_up_after_the_wait_and_never_waits_on_a_file_that_is_there(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    started = time.monotonic()
    missing = subprocess.run([sys.executable, "-m", "sidecar", "probe", "--wait=300ms", str(path)],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 1 and "no health file" in missing.stdout
    assert time.monotonic() - started >= 0.3
    health.write(path, health.FAILED, 60.0, reason="step failed")
    started = time.monotonic()
    failed = subprocess.run([sys.executable, "-m", "sidecar", "probe", str(path), "--wait", "30s"],
                            capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and failed.stdout == "failed: step failed\n"
    assert time.monotonic() - started < 10  # answered at once, not after 30 s


def test_probe_rejects_a_bad_wait() -> None:
    done = subprocess.run([sys.executable, "-m", "sidecar", "probe", "--wait", "soon"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "invalid duration value: 'soon'" in done.stderr


def _sidecar(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sidecar", *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "LOG_FORMAT": "json", **env}, check=False)


def _plan(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "plan" / "sidecar.toml"
    path.parent.mkdir()
    if kind == "invalid":
        path.write_text('[wait]\ntimeout = "${WAIT}"\n[databases.d]\nurl = "postgresql://u@h/d"\n'
                        '[[steps]]\ndatabase = "d"\ncommand = ["true"]\n')
    elif kind == "not TOML":
        path.write_text("this is = not [toml")
    elif kind == "missing":
        pass
    return path


@pytest.mark.parametrize("kind", ["invalid", "not TOML", "missing", "invalid settings"])
@pytest.mark.parametrize("once", [False, True], ids=["serving", "once"])
@pytest.mark.parametrize("via", ["SIDECAR_HEALTH_FILE", "--health-file"])
def test_a_run_whose_plan_is_invalid_leaves_no_healthy_file_behind(tmp_path: Path, kind: str, once: bool,
                                                                    via: str) -> None:
    """An earlier run's file says healthy and is fresh; a run on a bad plan (exit 2) must not leave it there:
    the probe fails at once, it does not pass until the file goes stale."""
    path = tmp_path / "run" / "health.json"
    path.parent.mkdir()
    health.write(path, health.HEALTHY, 60.0, plan="p", ready_at="earlier")
    assert _sidecar("probe", str(path), env={}).returncode == 0
    plan = _plan(tmp_path, "invalid" if kind == "invalid settings" else kind)
    args = ["run", str(plan), *(["--once"] if once else []), *(["--health-file", str(path)] if via[0] == "-" else [])]
    # With --health-file, SIDECAR_HEALTH_FILE names another file: the option wins.
    env = {"SIDECAR_HEALTH_FILE": str(tmp_path / "elsewhere.json") if via[0] == "-" else str(path)}
    if kind == "invalid settings":
        env.update(LOG_FORMAT="fancy", WAIT="1s")
    run = _sidecar(*args, env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    probed = _sidecar("probe", str(path), env={})
    assert probed.returncode == 1 and probed.stdout.startswith("no health file"), probed.stdout
    assert not path.exists()


def test_a_failure_hold_after_an_invalid_plan_reports_failed_then_removes_the_file(tmp_path: Path) -> None:
    """As after any failed run (not --once): `failed` while the hold lasts, no file after it."""
    path = tmp_path / "run" / "health.json"
    path.parent.mkdir()
    health.write(path, health.HEALTHY, 60.0, plan="p", ready_at="earlier")
    plan = _plan(tmp_path, "invalid")
    process = subprocess.Popen([sys.executable, "-m", "sidecar", "run", str(plan), "--health-file", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={"PATH": os.environ["PATH"], "SIDECAR_FAILURE_HOLD": "30s"})
    try:
        deadline = time.monotonic() + 20
        while (document := health.read(path)) is None or document["status"] != health.FAILED:
            assert time.monotonic() < deadline and process.poll() is None, document
            time.sleep(0.02)
        assert "wait.timeout: ${WAIT} is not set" in document["reason"]
        assert _sidecar("probe", str(path), env={}).returncode == 1
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 2, out
    assert not path.exists()
