"""deploy/kubernetes without a cluster: every overlay renders, validates strictly against the
Kubernetes 1.29 and 1.33 schemas, and has the properties that matter (probes and their budget,
hardening, the health file's volume, pinned images)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from sidecar.plan import load_plan
from tests.kubernetes import (
    HEALTH_FOLDER,
    KUBERNETES,
    OVERLAYS,
    SIDECAR_USER,
    mount_plan,
    pod_specs,
    render,
    seconds,
    sidecar_containers,
)

SCHEMAS = ("1.29.0", "1.33.0")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: render(KUBERNETES / "overlays" / overlay) for overlay in OVERLAYS}


def problems(docs: list[dict[str, Any]], plan_root: Path) -> list[str]:
    """What is wrong with a rendered overlay, in words; [] when nothing is."""
    found = []
    plan = load_plan(mount_plan(docs, plan_root), {"DB_PASSWORD": "x"})
    for where, spec in pod_specs(docs):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec.get("initContainers", []) + spec["containers"]:
            image = container["image"]
            if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
                found.append(f"{where} {container['name']}: image {image!r} is not pinned to a version")
            resources = container.get("resources", {})
            if not resources.get("requests") or "memory" not in resources.get("limits", {}):
                found.append(f"{where} {container['name']}: no resource requests and memory limit")
        for container in sidecar_containers(spec):
            name = f"{where} {container['name']}"
            security = container.get("securityContext", {})
            expected = {"runAsNonRoot": True, "runAsUser": SIDECAR_USER, "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
            for key, value in expected.items():
                if security.get(key) != value:
                    found.append(f"{name}: securityContext.{key} is {security.get(key)!r}, not {value!r}")
            health = [m for m in container.get("volumeMounts", []) if m["mountPath"] == HEALTH_FOLDER]
            if not health or "emptyDir" not in volumes[health[0]["name"]]:
                found.append(f"{name}: no emptyDir at {HEALTH_FOLDER} for the health file")
            startup = container.get("startupProbe")
            if container.get("restartPolicy") == "Always":  # a native sidecar: the app waits for it
                if not startup:
                    found.append(f"{name}: a native sidecar needs a startupProbe, or the app starts at once")
                    continue
                command = startup["exec"]["command"]
                if command[:2] != ["sidecar", "probe"]:
                    found.append(f"{name}: startupProbe runs {command}, not `sidecar probe`")
                wait = seconds(command[command.index("--wait") + 1]) if "--wait" in command else 0.0
                if startup.get("timeoutSeconds", 1) <= wait:
                    found.append(f"{name}: startupProbe timeoutSeconds must exceed its --wait ({wait:g}s)")
                budget = (startup.get("initialDelaySeconds", 0)
                          + startup.get("failureThreshold", 3) * startup.get("periodSeconds", 10))
                needed = plan.wait_timeout + plan.lock_timeout
                if budget <= needed:
                    found.append(f"{name}: startupProbe budget {budget:g}s does not cover the plan's wait.timeout"
                                 f" + lock.timeout ({needed:g}s) and its run: the kubelet would kill it mid-migration")
                liveness = container.get("livenessProbe", {}).get("exec", {}).get("command", [])
                if liveness and "--alive" not in liveness:
                    found.append(f"{name}: livenessProbe without --alive restarts the sidecar when a database is down")
            elif startup or container.get("livenessProbe") or container.get("readinessProbe"):
                found.append(f"{name}: a probe on a run-once container (an init container has none)")
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", SCHEMAS)
def test_every_document_validates_strictly(rendered: dict[str, list[dict[str, Any]]], overlay: str,
                                           version: str) -> None:
    for doc in rendered[overlay]:
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError naming the field


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_has_the_properties_that_matter(rendered: dict[str, list[dict[str, Any]]], overlay: str,
                                                      tmp_path: Path) -> None:
    assert problems(rendered[overlay], tmp_path) == []


def test_the_native_sidecar_is_what_the_readme_says(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (_, spec), = pod_specs(rendered["native-sidecar"])
    migrator, = sidecar_containers(spec)
    assert migrator["restartPolicy"] == "Always" and migrator["args"] == ["run"]
    assert migrator["startupProbe"]["exec"]["command"] == ["sidecar", "probe", "--wait", "2s"]
    assert migrator["startupProbe"]["periodSeconds"] * migrator["startupProbe"]["failureThreshold"] == 900
    assert migrator["livenessProbe"]["exec"]["command"] == ["sidecar", "probe", "--alive"]
    env = {e["name"]: e["value"] for e in migrator["env"]}
    secret_mount = next(m for m in migrator["volumeMounts"] if m["mountPath"] == "/run/secrets/db")
    assert env["DB_PASSWORD_FILE"] == "/run/secrets/db/password" and secret_mount["readOnly"] is True


def test_a_kubernetes_validation_error_is_caught(rendered: dict[str, list[dict[str, Any]]]) -> None:
    doc = copy.deepcopy(next(d for d in rendered["native-sidecar"] if d["kind"] == "Deployment"))
    doc["spec"]["template"]["spec"]["initContainers"][0]["startupProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, SCHEMAS[0], strict=True)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda m: m["startupProbe"].update(failureThreshold=300), "startupProbe budget 300s does not cover"),
    (lambda m: m.pop("startupProbe"), "needs a startupProbe"),
    (lambda m: m["livenessProbe"]["exec"].update(command=["sidecar", "probe"]), "livenessProbe without --alive"),
    (lambda m: m["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
    (lambda m: m.update(image="registry.example.com/sidecar:latest"), "is not pinned"),
    (lambda m: m.update(image="registry.example.com/sidecar"), "is not pinned"),
    (lambda m: m["startupProbe"].update(timeoutSeconds=2), "must exceed its --wait"),
])
def test_the_common_mistakes_are_caught(rendered: dict[str, list[dict[str, Any]]], tmp_path: Path,
                                        change: Any, expected: str) -> None:
    docs = copy.deepcopy(rendered["native-sidecar"])
    spec = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    change(spec["initContainers"][0])
    found = problems(docs, tmp_path)
    assert any(expected in p for p in found), found
