"""The Django example three ways: start -> ready, cold and no-op (issue: the new step at most 0.5x the script).

- the seed's entrypoint script, as docs/django.md quotes it (four `manage.py migrate`
  calls; its `|| true` kept); "ready" is the script's exit;
- the same sequence as command steps (examples/django/commands.toml);
- the Django step (examples/django/sidecar.toml).

For the sidecar plans, "ready" is the moment the `sidecar.ready` line is
written, timed from process start. Cold: the three databases exist and are
empty (the script cannot create them). No-op: everything is applied. The
script's no-op run is its second run, which fails (migrating "to 0003" with
--fake unapplies 0004 and later); it is timed to its exit all the same.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "django"
DATABASES = {"DEFAULT_DB": "bench_dj_default", "MATERIALS_DB": "bench_dj_materials", "RESULTS_DB": "bench_dj_results"}
ENTRYPOINT = """set -e
python manage.py migrate --noinput --fake-initial
python manage.py migrate materials --database=materials_db --noinput --fake-initial
python manage.py migrate simulation 0003 --database=results_db --fake --noinput || true
python manage.py migrate simulation --database=results_db --noinput
"""
WAYS = {"entrypoint script": "script", "command steps (commands.toml)": "commands.toml",
        "Django step (sidecar.toml)": "sidecar.toml"}


def environment(bench: Any) -> dict[str, str]:
    from tests.pgserver import PASSWORD, SUPERUSER

    python_dir = str(Path(sys.executable).parent)
    return {**bench.env, **DATABASES, "DB_HOST": "127.0.0.1", "DB_PORT": str(bench.server.port),
            "DB_USER": SUPERUSER, "DB_PASSWORD": PASSWORD, "PYTHON": sys.executable,
            "PATH": f"{python_dir}:{bench.env.get('PATH', '')}", "DJANGO_SETTINGS_MODULE": "epsm.settings",
            "LOG_FORMAT": "json"}


def start_to_ready(bench: Any, way: str, env: dict[str, str]) -> tuple[float, int]:
    """Seconds from process start to ready (see above), and the exit code."""
    if way == "script":
        argv = ["bash", "-c", ENTRYPOINT]
    else:
        argv = [str(Path(sys.executable).parent / "sidecar"), "run", "--once", way]
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=EXAMPLE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    ready = None
    for line in process.stdout:
        if ready is None and b'"event": "sidecar.ready"' in line:
            ready = time.perf_counter() - started
    code = process.wait()
    return (ready if ready is not None else time.perf_counter() - started), code


def django_ready(bench: Any, runs: int) -> dict[str, float]:
    env = environment(bench)
    names = tuple(DATABASES.values())
    cold: dict[str, list[float]] = {name: [] for name in WAYS}
    noop: dict[str, list[float]] = {name: [] for name in WAYS}
    codes: dict[str, set[int]] = {}
    for _ in range(runs):  # each round, each way in turn: a slow spell weighs on all alike
        for name, way in WAYS.items():
            bench.reset(names)
            seconds, code = start_to_ready(bench, way, env)
            if code != 0:
                raise RuntimeError(f"{name}: the cold run failed with exit {code}")
            cold[name].append(seconds)
            seconds, code = start_to_ready(bench, way, env)
            noop[name].append(seconds)
            codes.setdefault(name, set()).add(code)
    figures = {f"{name}, cold": statistics.median(values) for name, values in cold.items()}
    figures |= {f"{name}, no-op{'' if codes[name] == {0} else ' (exits 1: the second-run bug)'}":
                statistics.median(values) for name, values in noop.items()}
    return figures


def django_serving(bench: Any, seconds: float) -> dict[str, float]:
    """The Django step's sidecar while it serves the example: its RSS and CPU, and its child processes left."""
    from bench.timing import cpu_seconds
    from sidecar import probe
    from tests.pgserver import _children

    env = environment(bench)
    bench.reset(tuple(DATABASES.values()))
    health_file = bench.work / "django-serve.json"
    process = subprocess.Popen([str(Path(sys.executable).parent / "sidecar"), "run", "sidecar.toml"], cwd=EXAMPLE,
                               env={**env, "SIDECAR_HEALTH_FILE": str(health_file)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not probe.probe(health_file)[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = cpu_seconds(process.pid), time.monotonic()
        status = Path(f"/proc/{process.pid}/status").read_text()
        rss_kib = int(status.split("VmRSS:")[1].split()[0])
        children = len(_children(process.pid))
    finally:
        process.terminate()
        process.wait(10)
    return {"RSS (MiB)": rss_kib / 1024, "CPU (% of a core)": 100 * (cpu1 - cpu0) / (wall1 - wall0),
            "child processes while serving": children}


def render(figures: dict[str, float]) -> str:
    script = {kind: next(v for k, v in figures.items() if k.startswith("entrypoint script, " + kind))
              for kind in ("cold", "no-op")}
    lines = ["| way | seconds | × entrypoint script |", "|---|---:|---:|"]  # noqa: RUF001 (a ratio: the multiplication sign, on purpose)
    for name, value in figures.items():
        kind = "cold" if ", cold" in name else "no-op"
        lines.append(f"| {name} | {value:.3f} | {value / script[kind]:.2f} |")
    return "\n".join(lines) + "\n"
