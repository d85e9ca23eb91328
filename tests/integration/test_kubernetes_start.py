"""The native-sidecar manifest's start order, simulated against a real server: the plan and the
password mounted as the kubelet mounts them (symlinks through ..data), several pods' migrators
starting at once and killed at random, and the startupProbe run with the manifest's own
command and thresholds, deciding as the kubelet would when each pod's application starts."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Project, wait_for
from tests.kubernetes import KUBERNETES, mount_plan, pod_specs, render, sidecar_containers, write_mounted_config_map
from tests.pgserver import PASSWORD, SUPERUSER

PODS = 3


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(KUBERNETES / "overlays" / "native-sidecar")


def migrator(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The sidecar container of the application's pods."""
    (_, spec), = [(where, spec) for where, spec in pod_specs(docs) if where.startswith("Deployment/")]
    return sidecar_containers(spec)[0]


def pod_environment(docs: list[dict[str, Any]], root: Path, project: Project, health: Path) -> dict[str, str]:
    """The container's environment from the manifest, its paths re-rooted under `root`."""
    env = {e["name"]: e["value"] for e in migrator(docs)["env"]}
    for name in ("SIDECAR_PLAN", "DB_PASSWORD_FILE"):
        env[name] = str(root / env[name].lstrip("/"))
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # `sidecar`, as in the image
    return {**project.env(), **env, "PATH": path, "SIDECAR_HEALTH_FILE": str(health), "DB_HOST": "127.0.0.1",
            "DB_PORT": str(project.server.port), "DB_USER": SUPERUSER, "DB_NAME": project.names["default"]}


def mount_everything(docs: list[dict[str, Any]], root: Path, project: Project) -> None:
    mount_plan(docs, root)
    write_mounted_config_map({"data": {"password": PASSWORD}}, root / "run/secrets/db")  # a Secret mounts alike
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")


def test_the_plan_and_password_mounted_as_symlinks_work(docs: list[dict[str, Any]], project: Project,
                                                        tmp_path: Path) -> None:
    mount_everything(docs, tmp_path / "pod", project)
    env = pod_environment(docs, tmp_path / "pod", project, tmp_path / "health.json")
    assert (tmp_path / "pod/plan/sidecar.toml").is_symlink()
    run = subprocess.run([sys.executable, "-m", "sidecar", "run", "--once"], env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    project.outputs.append(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [row[0] for row in project.history("default")] == ["0001", "0002"]


@dataclass
class Pod:
    name: str
    args: list[str]  # the manifest's
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    restarts: int = 0
    failures: int = 0  # consecutive startupProbe failures of the current container
    started_at: float | None = None  # when the kubelet would start the application
    migrated_when_started: int = -1  # migrations in the history at that moment
    verdicts: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "sidecar", *self.args], env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.failures = 0

    def reap(self) -> None:
        assert self.process is not None
        out, _ = self.process.communicate(timeout=30)
        self.outputs.append(out)


def test_replicas_starting_at_once_and_killed_at_random_start_their_apps_only_after_the_plan(
        docs: list[dict[str, Any]], project: Project, tmp_path: Path) -> None:
    container = migrator(docs)
    startup = container["startupProbe"]
    root = tmp_path / "pod"
    mount_everything(docs, root, project)
    # This release adds a slow migration, so the replicas overlap and the kills land mid-run.
    migrations = root / "migrations/app"
    stamped = (migrations / "..data").resolve()
    (stamped / "0003_backfill.sql").write_text("SELECT pg_sleep(6);\n")
    os.symlink("..data/0003_backfill.sql", migrations / "0003_backfill.sql")

    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    pods = [Pod(f"pod-{i}", container["args"], pod_environment(docs, root, project, tmp_path / f"health-{i}.json"))
            for i in range(PODS)]
    for pod in pods:
        pod.start()
    began = time.monotonic()
    kills: list[str] = []

    def health_text(pod: Pod) -> str:
        try:
            return Path(pod.env["SIDECAR_HEALTH_FILE"]).read_text()
        except FileNotFoundError:
            return ""

    def kill_at_random() -> None:
        """First the replica that is migrating, mid-file; then any replica not started yet."""
        first = rng.uniform(1.0, 3.0)
        for number, at in enumerate((first, rng.uniform(first + 0.2, 5.0))):  # all before the 6 s file ends
            time.sleep(max(0.0, at - (time.monotonic() - began)))
            running = wait_for(lambda: [p for p in pods if p.started_at is None and p.process is not None
                                        and p.process.poll() is None], timeout=5)  # not one killed already
            if number == 0:  # the one migrating: its health file names its work within a second
                migrating = wait_for(lambda: [p for p in pods if p.process and p.process.poll() is None
                                              and '"work": {' in health_text(p)], timeout=5)
            else:
                migrating = [p for p in running if '"work": {' in health_text(p)]
            victim = migrating[0] if number == 0 else rng.choice(running)
            assert victim.process is not None
            victim.process.send_signal(signal.SIGKILL)  # OOM, eviction, a node lost
            victim.process.wait()
            kills.append(f"{victim.name} at {time.monotonic() - began:.1f}s"
                         + (" (migrating)" if victim in migrating else ""))

    killer = threading.Thread(target=kill_at_random, daemon=True)
    killer.start()
    try:
        while any(p.started_at is None for p in pods) and time.monotonic() - began < 90:
            round_began = time.monotonic()
            waiting = [p for p in pods if p.started_at is None]
            for pod in waiting:  # the container exited: restartPolicy Always starts it again
                assert pod.process is not None
                if pod.process.poll() is not None:
                    pod.reap()
                    pod.restarts += 1
                    pod.start()
            probes = {p.name: subprocess.Popen(startup["exec"]["command"], env=p.env, stdout=subprocess.PIPE,
                                               text=True) for p in waiting}
            for pod in waiting:
                try:
                    out, _ = probes[pod.name].communicate(timeout=startup["timeoutSeconds"])
                    code = probes[pod.name].returncode
                except subprocess.TimeoutExpired:  # the kubelet counts a timeout as a failure
                    probes[pod.name].kill()
                    out, code = "timed out", 1
                pod.verdicts.append(out.strip())
                if code == 0:
                    pod.started_at = time.monotonic() - began
                    pod.migrated_when_started = len(project.history("default"))
                else:
                    pod.failures += 1
                    assert pod.failures < startup["failureThreshold"], f"{pod.name}: the kubelet would kill it"
            time.sleep(max(0.0, startup["periodSeconds"] - (time.monotonic() - round_began)))
    finally:
        killer.join(10)
        for pod in pods:
            if pod.process and pod.process.poll() is None:
                pod.process.send_signal(signal.SIGTERM)  # the pod goes away: the sidecar stops serving
            if pod.process:
                pod.reap()
        project.outputs.extend(out for pod in pods for out in pod.outputs)

    report = f"seed {seed}, kills {kills}, " + "; ".join(
        f"{p.name}: started at {p.started_at}s, {p.restarts} restarts, verdicts {p.verdicts}" for p in pods)
    assert all(p.started_at is not None for p in pods), report
    assert all(p.migrated_when_started == 3 for p in pods), report  # no application before the plan was done
    assert len(kills) == 2 and sum(p.restarts for p in pods) == 2, report
    assert kills[0].endswith("(migrating)"), report
    verdicts = [v for p in pods for v in p.verdicts]
    assert not [v for v in verdicts if v.startswith(("failed", "stale", "unhealthy"))], report
    assert all(v.startswith(("starting:", "no health file", "healthy:")) for v in verdicts), report
    assert [r[0] for r in project.history("default")] == ["0001", "0002", "0003"], report
    # The replica killed mid-file never said it applied it, and at most one other replica did: the
    # server cancels a statement whose client is gone within 2 s (client_connection_check_interval),
    # so the file and its history row roll back together and the next holder of the plan lock, which
    # waits for that (planlock.fence), applies it; or the file had finished, and nobody applies it again.
    logs = [line for p in pods for out in p.outputs for line in out.splitlines()]
    assert len([line for line in logs if '"migration.applied"' in line and "0003_backfill.sql" in line]) <= 1, report
    print(f"\n{report}")


def test_the_job_variants_pods_wait_until_the_job_has_migrated(project: Project, tmp_path: Path) -> None:
    docs = render(KUBERNETES / "overlays" / "job")
    job = next(d for d in docs if d["kind"] == "Job")["spec"]["template"]["spec"]["containers"][0]
    waiter = migrator(docs)
    root = tmp_path / "pod"
    mount_everything(docs, root, project)
    env = pod_environment(docs, root, project, tmp_path / "health.json")
    waiting = subprocess.Popen(waiter["command"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        assert waiting.poll() is None  # nothing migrated yet: the application does not start
        run = subprocess.run([sys.executable, "-m", "sidecar", *job["args"]], env=env, capture_output=True,
                             text=True, timeout=60, check=False)
        project.outputs.append(run.stdout + run.stderr)
        assert run.returncode == 0, run.stdout + run.stderr
        assert waiting.wait(timeout=10) == 0  # the Job is done: the application starts
    finally:
        waiting.kill()
