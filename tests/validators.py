"""The offline validators each generated config file must pass, run once over many files.

Each validator is a command that takes file paths; starting one costs more than
checking a file, so callers hand over every distinct file at once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from .conftest import dev_tool

# Which validator checks which generated file, by glob relative to the project root.
VALIDATORS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "hadolint": ([dev_tool("hadolint")], ("Dockerfile",)),
    "compose-spec": (
        [dev_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"],
        ("compose.yaml",),
    ),
    "github-workflows": (
        [dev_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"],
        (".github/workflows/*.yml",),
    ),
    "dependabot": (
        [dev_tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot"],
        (".github/dependabot.yml",),
    ),
    "gitlab-ci": (
        [dev_tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci"],
        (".gitlab-ci.yml",),
    ),
    "kubernetes": (
        [dev_tool("kubernetes-validate"), "--strict", "--quiet"],
        ("deploy/kubernetes/*.yaml",),
    ),
}
# Not Kubernetes resources: kustomize's own files.
NOT_RESOURCES = frozenset({"kustomization.yaml"})


def distinct(paths: Iterable[Path]) -> list[Path]:
    """One path per distinct content: identical files need one run."""
    by_content: dict[bytes, Path] = {}
    for path in paths:
        by_content.setdefault(path.read_bytes(), path)
    return sorted(by_content.values())


def files_for(validator: str, projects: Iterable[Path]) -> list[Path]:
    """The distinct files among the projects' that this validator checks."""
    _, patterns = VALIDATORS[validator]
    return distinct(
        path
        for project in projects
        for pattern in patterns
        for path in sorted(project.glob(pattern))
        if path.name not in NOT_RESOURCES
    )


def validate(validator: str, files: list[Path]) -> None:
    """Run the validator on every file in one process; fail with its findings."""
    command, _ = VALIDATORS[validator]
    result = subprocess.run(
        [*command, *map(str, files)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{validator}:\n{result.stdout}\n{result.stderr}"
