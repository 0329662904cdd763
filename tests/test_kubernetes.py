"""use_kubernetes: the manifests are valid and wired to the Procfile, the settings and the image.

Every manifest of every combination passes kubernetes-validate --strict in
tests/test_matrix.py; here `kubectl kustomize` builds the whole directory
when kubectl is installed, and the wiring is checked on the parsed YAML.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .deployment import (
    env_file,
    git_ignored,
    procfile_commands,
)
from .validators import distinct, validate

MANIFESTS = "deploy/kubernetes"
KUSTOMIZATION = "kustomization.yaml"
# Seconds a process needs to exit after its drain: the grace period must cover the
# preStop pause, GRACEFUL_TIMEOUT and this.
EXIT_MARGIN_SECONDS = 5

Manifest = dict[str, Any]


def manifest_files(project: Path) -> list[Path]:
    """The Kubernetes objects' files: every YAML file but the kustomization."""
    return sorted(p for p in (project / MANIFESTS).glob("*.yaml") if p.name != KUSTOMIZATION)


def kustomization(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((project / MANIFESTS / KUSTOMIZATION).read_text())
    return loaded


def objects(project: Path) -> dict[tuple[str, str], Manifest]:
    """Every object in the manifests by (kind, name)."""
    found = {}
    for path in manifest_files(project):
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"], document["metadata"]["name"]] = document
    return found


def workloads(project: Path) -> dict[str, Manifest]:
    """Deployments and Jobs by the Procfile process type they run (their component label)."""
    return {
        manifest["metadata"]["labels"]["app.kubernetes.io/component"]: manifest
        for (kind, _), manifest in objects(project).items()
        if kind in ("Deployment", "Job")
    }


def only_container(workload: Manifest) -> dict[str, Any]:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    return container


def config(project: Path) -> dict[str, str]:
    """The ConfigMap's data: kustomize generates it from config.env."""
    [generator] = kustomization(project)["configMapGenerator"]
    [source] = generator["envs"]
    return env_file(project / MANIFESTS / source)


def named_port(container: dict[str, Any], port: int | str) -> int:
    """A port given by number or by the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def test_kustomize_builds_valid_manifests(deploy_projects: dict[str, Path], tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the built output is not checked")
    built = []
    for name, project in deploy_projects.items():
        directory = tmp_path / name
        shutil.copytree(project / MANIFESTS, directory)
        shutil.copy(directory / "secret.env.example", directory / "secret.env")
        output = subprocess.run(
            [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
        )
        assert output.returncode == 0, output.stderr
        (directory / "built.yaml").write_text(output.stdout)
        built.append(directory / "built.yaml")
    validate("kubernetes", distinct(built))


def test_kustomization_lists_every_manifest_and_its_sources(project: Path) -> None:
    spec = kustomization(project)
    assert spec["resources"] == [path.name for path in manifest_files(project)]
    [secrets] = spec["secretGenerator"]
    assert secrets["envs"] == ["secret.env"]
    assert (project / MANIFESTS / "secret.env.example").is_file()
    assert not (project / MANIFESTS / "secret.env").exists()
    [image] = spec["images"]
    assert {only_container(w)["image"] for w in workloads(project).values()} == {image["name"]}


def test_each_procfile_process_runs_its_command(project: Path) -> None:
    running = workloads(project)
    assert {name: only_container(w)["command"] for name, w in running.items()} == (
        procfile_commands(project)
    )
    kinds = {name: workload["kind"] for name, workload in running.items()}
    assert kinds == {name: "Job" if name == "release" else "Deployment" for name in running}


def test_web_port_is_the_configured_port_and_the_service_target(project: Path) -> None:
    container = only_container(workloads(project)["web"])
    [port] = container["ports"]
    assert port["containerPort"] == int(config(project)["PORT"])
    [service] = [m for (kind, _), m in objects(project).items() if kind == "Service"]
    [service_port] = service["spec"]["ports"]
    assert named_port(container, service_port["targetPort"]) == port["containerPort"]
    pod_labels = workloads(project)["web"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_web_probes_ask_the_health_endpoints(project: Path) -> None:
    container = only_container(workloads(project)["web"])
    paths = {
        probe: (
            container[probe]["httpGet"]["path"],
            named_port(container, container[probe]["httpGet"]["port"]),
        )
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    port = container["ports"][0]["containerPort"]
    assert paths == {
        "startupProbe": ("/healthz", port),
        "livenessProbe": ("/healthz", port),
        "readinessProbe": ("/readyz", port),
    }
    # The service routes them (its own tests check what they answer).
    source = "\n".join(path.read_text() for path in (project / "src").rglob("*.py"))
    assert '"/healthz"' in source
    assert '"/readyz"' in source


def test_grace_period_covers_the_pause_and_the_drain(project: Path) -> None:
    drain = int(config(project)["GRACEFUL_TIMEOUT"])
    for name, workload in workloads(project).items():
        if workload["kind"] == "Job":
            continue
        pod = workload["spec"]["template"]["spec"]
        lifecycle = only_container(workload).get("lifecycle", {})
        pause = lifecycle["preStop"]["sleep"]["seconds"] if name == "web" else 0
        assert pod["terminationGracePeriodSeconds"] >= pause + drain + EXIT_MARGIN_SECONDS, name


def test_every_pod_runs_unprivileged_on_a_read_only_filesystem(project: Path) -> None:
    for name, workload in workloads(project).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["automountServiceAccountToken"] is False, name
        container = only_container(workload)
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        assert {m["mountPath"] for m in container["volumeMounts"] if m["name"] in scratch} == {
            "/tmp"
        }, name
        resources = container["resources"]
        assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}, name


def test_image_user_is_the_pods_user(project: Path) -> None:
    [user] = re.findall(r"^USER (\d+):(\d+)$", (project / "Dockerfile").read_text(), re.MULTILINE)
    for workload in workloads(project).values():
        context = workload["spec"]["template"]["spec"]["securityContext"]
        assert (str(context["runAsUser"]), str(context["runAsGroup"])) == user


def test_config_and_secret_reach_every_process(project: Path, answers: dict[str, str]) -> None:
    spec = kustomization(project)
    generated = [spec["configMapGenerator"][0]["name"], spec["secretGenerator"][0]["name"]]
    for name, workload in workloads(project).items():
        sources = only_container(workload)["envFrom"]
        refs = [s.get("configMapRef", s.get("secretRef"))["name"] for s in sources]
        assert refs == generated, name
    # URLs carry credentials: they belong in the Secret, never in the ConfigMap.
    secret_keys = set(env_file(project / MANIFESTS / "secret.env.example"))
    expected = {"DATABASE_URL"} if answers["database"] != "none" else set()
    assert secret_keys == expected | ({"REDIS_URL"} if answers["worker"] != "none" else set())
    assert not {key for key in config(project) if key.endswith("_URL")}


def test_autoscaler_and_disruption_budget_govern_the_web_deployment(project: Path) -> None:
    web = workloads(project)["web"]
    found = objects(project)
    [autoscaler] = [m for (kind, _), m in found.items() if kind == "HorizontalPodAutoscaler"]
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", web["metadata"]["name"])
    assert "replicas" not in web["spec"]  # the autoscaler owns it; apply must not reset it
    assert autoscaler["spec"]["minReplicas"] >= 2
    [budget] = [m for (kind, _), m in found.items() if kind == "PodDisruptionBudget"]
    assert budget["spec"]["selector"] == web["spec"]["selector"]


def test_secret_env_is_ignored_and_its_example_tracked(project: Path) -> None:
    paths = [f"{MANIFESTS}/secret.env", f"{MANIFESTS}/secret.env.example", "uv.lock"]
    assert git_ignored(project, paths) == {f"{MANIFESTS}/secret.env"}


def test_use_kubernetes_no_leaves_no_deploy_directory(cookies: Any) -> None:
    result = cookies.bake(extra_context={"use_kubernetes": False, "worker": "celery"})
    assert result.exit_code == 0, result.exception
    assert not (result.project_path / "deploy").exists()
    assert "## Kubernetes" not in (result.project_path / "README.md").read_text()
