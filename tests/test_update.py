"""A generated project takes the template's later changes with cruft, beside its owner's edits.

The template under test, this working tree's files as they are, is committed
to a throwaway git repository. cruft bakes a project from it; the project's
owner commits and edits it; the template moves on in another part of the
same files; `cruft update` merges the template's change in. cruft's git
operations need no network (the template is a local repository) and no git
config: the identity comes from the environment, user and system config are off.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import DEFAULT_ANSWERS, TEMPLATE, UV, dev_tool, project_env, run
from .test_generated_project import (
    UPDATED_STACK,
    backing_services,
    generated_suite_passes,
    servers_for,
)

CRUFT = dev_tool("cruft")
COOKIECUTTER = dev_tool("cookiecutter")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Test",
    "GIT_AUTHOR_EMAIL": "template-test@example.com",
    "GIT_COMMITTER_NAME": "Template Test",
    "GIT_COMMITTER_EMAIL": "template-test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
PROJECT_TEMPLATE = "{{cookiecutter.project_slug}}"

# The template moves on: a Makefile target, and a README line about it.
TEMPLATE_TARGET = "typecheck: ## type-check only\n\tuv run mypy\n"
TEMPLATE_README_LINE = "`make typecheck` runs mypy alone, without ruff.\n"
# The owner's edits, at the end of the same two files.
OWNER_TARGET = (
    "smoke: ## ask the running service for its health\n\tcurl -f localhost:8000/healthz\n"
)
OWNER_README_SECTION = "## Deploying\n\nThe team deploys `main` on every merge.\n"

CONFLICT_MARKER = re.compile(r"^(<{7}|>{7}|={7})( |$)", re.MULTILINE)


def tool_env(tmp: Path) -> dict[str, str]:
    """git, cruft and make here: uv on PATH, a fixed git identity, cookiecutter's state in `tmp`."""
    config = tmp / "cookiecutter.yaml"
    config.write_text(f"cookiecutters_dir: {tmp / 'cookiecutters'}\nreplay_dir: {tmp / 'replay'}\n")
    path = os.pathsep.join([str(Path(UV).parent), os.environ.get("PATH", "")])
    return project_env(PATH=path, COOKIECUTTER_CONFIG=str(config), **GIT_ENV)


def attempt(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command that may fail; the caller judges its exit status and output."""
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def template_files() -> list[str]:
    """The template's files as the working tree has them: tracked or new, not ignored."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [path for path in listing.stdout.split("\0") if path and (TEMPLATE / path).is_file()]


def template_repository(root: Path, env: dict[str, str]) -> Path:
    """A git repository with one commit: this working tree's template."""
    repo = root / "template"
    for relative in template_files():
        target = repo / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE / relative, target, follow_symlinks=False)
    run(["git", "init", "--quiet", "--initial-branch=main"], repo, env)
    commit(repo, env, "The template as tested")
    return repo


def stdout(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = attempt(command, cwd, env)
    assert result.returncode == 0, f"$ {' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def commit(repo: Path, env: dict[str, str], message: str) -> str:
    run(["git", "add", "--all"], repo, env)
    run(["git", "commit", "--quiet", "--message", message], repo, env)
    return stdout(["git", "rev-parse", "HEAD"], repo, env).strip()


def insert_before(path: Path, anchor: str, text: str) -> None:
    source = path.read_text()
    assert source.count(anchor) == 1, f"{path.name}: {anchor!r} must occur once"
    path.write_text(source.replace(anchor, text + anchor))


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text)


def diff_files(diff: str) -> set[str]:
    """The project paths a `cruft diff` touches."""
    return {path.split("/", 1)[1] for path in re.findall(r"^diff --git (\S+) ", diff, re.MULTILINE)}


@dataclass
class Updated:
    """A project baked by cruft, edited by its owner, then updated after the template moved on."""

    project: Path
    env: dict[str, str]
    new_commit: str
    fresh_diff: subprocess.CompletedProcess[str]
    check_fresh: subprocess.CompletedProcess[str]
    check_stale: subprocess.CompletedProcess[str]
    update: subprocess.CompletedProcess[str]
    status_after_update: str


# The update touches only the Makefile and README, the same in every stack;
# tests/test_generated_project.py runs each other suite stack's own suite.
STACKS = {"fastapi-sqlite": UPDATED_STACK}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(answers, id=name, marks=pytest.mark.xdist_group(f"update-{name}"))
        for name, answers in STACKS.items()
    ],
)
def updated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Updated:
    root = tmp_path_factory.mktemp("update")
    env = tool_env(root)
    template = template_repository(root, env)
    context = ["--extra-context", json.dumps(request.param)]
    run(
        [CRUFT, "create", "--no-input", "--output-dir", str(root / "out"), str(template), *context],
        root,
        env,
    )
    project = root / "out" / DEFAULT_ANSWERS["project_slug"]
    run(["git", "init", "--quiet", "--initial-branch=main"], project, env)
    commit(project, env, "Bake the service")
    fresh_diff = attempt([CRUFT, "diff", "--exit-code"], project, env)
    check_fresh = attempt(["make", "check-template"], project, env)

    append(project / "Makefile", OWNER_TARGET)
    append(project / "README.md", OWNER_README_SECTION)
    commit(project, env, "Add a smoke target and the deploy notes")

    source = template / PROJECT_TEMPLATE
    insert_before(source / "Makefile", "\nformat: ##", "\n" + TEMPLATE_TARGET)
    insert_before(source / "README.md", "\n## Processes\n", "\n" + TEMPLATE_README_LINE)
    new_commit = commit(template, env, "Add a typecheck target")
    check_stale = attempt(["make", "check-template"], project, env)

    update = attempt([CRUFT, "update", "--skip-apply-ask"], project, env)
    status = stdout(["git", "status", "--porcelain"], project, env)
    return Updated(project, env, new_commit, fresh_diff, check_fresh, check_stale, update, status)


def test_a_fresh_bake_matches_its_template_and_is_up_to_date(updated: Updated) -> None:
    """Rendering again gives the same files: nothing for an update to drag along."""
    assert updated.fresh_diff.returncode == 0, updated.fresh_diff.stdout
    assert updated.check_fresh.returncode == 0, updated.check_fresh.stderr
    assert "up to date" in updated.check_fresh.stdout


def test_check_template_fails_once_the_template_moves_on(updated: Updated) -> None:
    assert updated.check_stale.returncode != 0
    assert "out of date" in updated.check_stale.stdout


def test_update_applies_cleanly(updated: Updated) -> None:
    assert updated.update.returncode == 0, updated.update.stdout + updated.update.stderr
    changed = dict((line[3:], line[:2]) for line in updated.status_after_update.splitlines())
    # Staged or not, modified only: no file unmerged, added or deleted.
    assert set(changed) == {".cruft.json", "Makefile", "README.md"}, changed
    assert all(state.strip() == "M" for state in changed.values()), changed
    assert not list(updated.project.rglob("*.rej"))
    for name in ("Makefile", "README.md"):
        assert not CONFLICT_MARKER.search((updated.project / name).read_text()), name


def test_update_keeps_the_owners_edits_and_brings_the_templates(updated: Updated) -> None:
    listed = run(["make", "help"], updated.project, updated.env)
    targets = set(re.findall(r"^  ([a-z-]+) ", listed, re.MULTILINE))
    assert {"smoke", "typecheck"} <= targets
    readme = (updated.project / "README.md").read_text()
    assert TEMPLATE_README_LINE in readme
    assert readme.endswith(OWNER_README_SECTION)


def test_update_links_the_new_commit_and_the_check_passes(updated: Updated) -> None:
    state = json.loads((updated.project / ".cruft.json").read_text())
    assert state["commit"] == updated.new_commit
    assert state["context"]["cookiecutter"]["_commit"] == updated.new_commit
    check = attempt(["make", "check-template"], updated.project, updated.env)
    assert check.returncode == 0, check.stdout + check.stderr


def test_cruft_diff_then_shows_only_the_owners_edits(updated: Updated) -> None:
    diff = run([CRUFT, "diff"], updated.project, updated.env)
    assert diff_files(diff) == {"Makefile", "README.md"}
    # The project is the diff's old side, the template its new side.
    owners = {line[1:] for line in diff.splitlines() if line.startswith("-") and line[1:3] != "--"}
    assert "smoke: ## ask the running service for its health" in owners
    assert "## Deploying" in owners


def test_updated_project_passes_its_own_tests(updated: Updated) -> None:
    """Both tiers of its suite: the run of this stack's suite for the whole test session."""
    answers = json.loads((updated.project / ".cruft.json").read_text())["context"]["cookiecutter"]
    stack = {option: answers[option] for option in UPDATED_STACK}
    servers = servers_for(stack)
    env = backing_services(servers)
    run([UV, "sync", "--quiet", "--python", sys.executable], updated.project, project_env(**env))
    generated_suite_passes(updated.project, stack, servers, env)


def test_a_cookiecutter_bake_is_linked_then_checked(tmp_path: Path) -> None:
    """A project baked without cruft: the check says what is missing, `cruft link` adds it."""
    env = tool_env(tmp_path)
    template = template_repository(tmp_path, env)
    run(
        [COOKIECUTTER, "--no-input", "--output-dir", str(tmp_path / "out"), str(template)],
        tmp_path,
        env,
    )
    project = tmp_path / "out" / DEFAULT_ANSWERS["project_slug"]
    unlinked = attempt(["make", "--no-print-directory", "check-template"], project, env)
    assert unlinked.returncode != 0
    assert unlinked.stderr.splitlines()[0].startswith("no .cruft.json: "), unlinked.stderr
    assert "Traceback" not in unlinked.stdout + unlinked.stderr

    run(["git", "init", "--quiet", "--initial-branch=main"], project, env)
    commit(project, env, "Bake the service")
    run([CRUFT, "link", "--no-input", str(template)], project, env)
    run([CRUFT, "diff", "--exit-code"], project, env)
    run(["make", "check-template"], project, env)


def test_check_template_runs_the_locked_cruft() -> None:
    """The generated projects run the cruft version these tests ran."""
    lock = tomllib.loads((TEMPLATE / "uv.lock").read_text())
    locked = next(package["version"] for package in lock["package"] if package["name"] == "cruft")
    pins: set[str] = set()
    for path in (TEMPLATE / PROJECT_TEMPLATE).rglob("*"):
        if path.is_file():
            pins.update(re.findall(r"cruft@([\w.]+)", path.read_text()))
    assert pins == {locked}
