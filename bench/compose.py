"""Compose start-up, v2 and 1.29 side by side: how soon the backend starts once the migrator is ready.

For each Compose and each pattern the example stack is brought up from scratch
(`up -d`, fresh volumes) and timed from the engine's own records: the
migrator's `sidecar.ready` line, its health event (or its exit, one-shot), and
the backend container's start. Each pattern has a floor: the same stack with a
migrator that is healthy at its first check (or done at once), which leaves
only Compose's polling and the backend's start. In each round every variant
takes a turn, so drift on the machine hits them alike.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import threading
import time
from datetime import datetime
from typing import Any

from tests.e2e.conftest import Stack, engine_time, image_names

ONCE = "docker-compose.once.yml"
FLOOR = "bench/compose-floor.yml"
# name: (compose files on top of docker-compose.yml, environment, what "ready" is)
VARIANTS: dict[str, tuple[tuple[str, ...], dict[str, str], str]] = {
    "service_healthy, probe --wait 2s": ((), {}, "log"),
    "service_healthy, plain probe": ((), {"MIGRATOR_PROBE_WAIT": "0s"}, "log"),
    "service_healthy floor (healthy at first check)": ((FLOOR,), {}, "healthy"),
    "one-shot (--once, service_completed_successfully)": ((ONCE,), {}, "log"),
    "one-shot floor (exits after its delay)": ((ONCE, FLOOR), {"FLOOR_MIGRATOR": "sleep {delay_s}"}, "die"),
}


def version(command: list[str]) -> str:
    done = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, check=False)
    return done.stdout.strip().removeprefix("v") or "?"


MEASURES = ("ready -> dependency event", "dependency event -> backend started", "ready -> backend started",
            "up -d -> backend started")


def measure(client: Any, images: dict[str, str], command: list[str], files: tuple[str, ...],
            env: dict[str, str], ready_from: str) -> dict[str, float]:
    """One fresh `up -d`, timed on the engine's clock (the host's: same machine)."""
    delay = random.uniform(2.5, 3.5)  # the floor's, see compose-floor.yml
    env = {k: v.format(delay_s=f"{delay:.3f}") for k, v in env.items()}
    stack = Stack(client, images, ("docker-compose.yml", *files), compose=command, FLOOR_DELAY=f"{delay * 1000:.0f}ms",
                  **env)
    events: list[dict[str, Any]] = []
    stream = client.events(decode=True, filters={"label": f"com.docker.compose.project={stack.project}"})
    threading.Thread(target=lambda: events.extend(stream), daemon=True).start()
    try:
        called = time.time()
        up = stack.compose("up", "-d", "--no-build")
        assert up.returncode == 0, up.stderr + stack.explain()
        deadline = time.monotonic() + 60
        while not _started(stack) and time.monotonic() < deadline:
            time.sleep(0.05)
        backend = engine_time(stack.container("backend").attrs["State"]["StartedAt"]).timestamp()
        time.sleep(0.2)  # the event stream trails the engine by a moment
        migrator_id = stack.container("migrator").id
        wanted = "die" if ONCE in files else "health_status: healthy"
        event = next(e["timeNano"] / 1e9 for e in events if e.get("id") == migrator_id and e["status"] == wanted)
        if ready_from == "log":
            line = next(line for line in stack.logs("migrator").splitlines() if "sidecar.ready" in line)
            ready = datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
        else:  # the floor: ready is its health, or its exit
            ready = event
        return dict(zip(MEASURES, (event - ready, backend - event, backend - ready, backend - called), strict=True))
    finally:
        stream.close()
        stack.down()


def _started(stack: Stack) -> bool:
    backend = stack.container("backend")
    return backend is not None and not backend.attrs["State"]["StartedAt"].startswith("0001-")


def compose_latency(composes: list[list[str]], runs: int) -> dict[str, Any]:
    """Every run of every variant under every Compose, each variant taking a turn in every round."""
    import docker

    client = docker.from_env()
    images = image_names()
    samples: dict[str, dict[str, list[dict[str, float]]]] = {f"Compose {version(c)}": {} for c in composes}
    for _ in range(runs):
        for command in composes:
            for name, (files, env, ready_from) in VARIANTS.items():
                samples[f"Compose {version(command)}"].setdefault(name, []).append(
                    measure(client, images, command, files, env, ready_from))
    return samples


def render(samples: dict[str, Any], runs: int) -> str:
    """One table per Compose: medians, with the range over the runs for ready -> backend."""
    lines = []
    for compose, variants in samples.items():
        lines += [f"#### {compose} ({runs} runs each; seconds, medians)", "",
                  "| variant | " + " | ".join(MEASURES) + " |", "|---|" + "---:|" * len(MEASURES)]
        for name, runs_ in variants.items():
            cells = []
            for m in MEASURES:
                values = [r[m] for r in runs_]
                cell = f"{statistics.median(values):.3f}"
                if m == "ready -> backend started":
                    cell += f" ({min(values):.2f}-{max(values):.2f})"
                cells.append(cell)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
