"""Wire in the chosen options by removing the files of the options not chosen.

`OWNED_PATHS` is the feature table: for each option, the paths each of its
values owns (yes/no options are keyed True/False). A path stays when the
chosen value owns it and goes when only unchosen values do. Paths not in the
table belong to every project. Pruning is all this hook does: no network, no
installs, nothing random. Then it tells the person where the project is and
the first commands to run.

Where two values need different files at the same path (FastAPI's and Flask's
`app.py`), the template names each file with a condition, e.g.
`{% if cookiecutter.web_framework == 'flask' %}app.py{% endif %}`: cookiecutter
skips a file whose name renders empty, so only the chosen one is written.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping

PACKAGE = "src/{package_name}"

DATABASE_PATHS = (
    "alembic.ini",
    f"{PACKAGE}/db.py",
    f"{PACKAGE}/items.py",
    f"{PACKAGE}/migrations",
    f"{PACKAGE}/tables.py",
    "tests/test_database.py",
    "tests/test_drain.py",
    "tests/test_faults.py",
    "tests/test_items.py",
    "tests/test_migrate.py",
)

# The background worker's example job's table. `worker.py`, `reports.py` and
# `tests/test_worker.py` are not listed: each variant (per library; with or
# without a database) is named with its condition and renders only for it.
WORKER_PATHS = (
    f"{PACKAGE}/migrations/versions/0002_create_reports.py",
    f"{PACKAGE}/migrations/versions/0003_add_report_error.py",
)

# Traces and metrics exported over OTLP, and the tests' OTLP receiver.
OPENTELEMETRY_PATHS = (f"{PACKAGE}/telemetry.py", "tests/otlp.py", "tests/test_telemetry.py")

# Error reports sent to Sentry, and the tests' local Sentry ingest.
SENTRY_PATHS = (f"{PACKAGE}/error_reporting.py", "tests/ingest.py", "tests/test_error_reporting.py")

# Container image and the development stack.
DOCKER_PATHS = (".dockerignore", "Dockerfile", "compose.yaml")

# Manifests for a cluster. The worker Deployment and the release Job also
# depend on other options: their file names are conditions, rendered empty
# (not written) without a worker or a database.
KUBERNETES_PATHS = ("deploy",)

# The generated project's CI, one file tree per service.
GITHUB_PATHS = (".github",)
GITLAB_PATHS = (".gitlab-ci.yml",)

OWNED_PATHS: dict[str, dict[str | bool, tuple[str, ...]]] = {
    "database": {
        "sqlite": DATABASE_PATHS,
        "postgresql": DATABASE_PATHS,
        "none": (),
    },
    "worker": {
        "none": (),
        "celery": WORKER_PATHS,
        "rq": WORKER_PATHS,
    },
    "use_opentelemetry": {
        True: OPENTELEMETRY_PATHS,
        False: (),
    },
    "use_sentry": {
        True: SENTRY_PATHS,
        False: (),
    },
    "use_docker": {
        True: DOCKER_PATHS,
        False: (),
    },
    "use_kubernetes": {
        True: KUBERNETES_PATHS,
        False: (),
    },
    "ci": {
        "github": GITHUB_PATHS,
        "gitlab": GITLAB_PATHS,
        "none": (),
    },
}


def paths_to_remove(answers: Mapping[str, object]) -> list[str]:
    """Paths owned only by values that were not chosen, with placeholders filled."""
    remove: set[str] = set()
    for option, owners in OWNED_PATHS.items():
        kept = set(owners[answers[option]])
        for paths in owners.values():
            remove.update(set(paths) - kept)
    return sorted(path.format_map(answers) for path in remove)


# os.path rather than pathlib: importing pathlib would add a few ms to every bake.
def remove_paths(root: str | os.PathLike[str], paths: list[str]) -> None:
    for relative in paths:
        path = os.path.join(root, relative)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def next_steps(answers: Mapping[str, object], project: str) -> str:
    """A short, plain message: where the project is and the first commands to run there."""
    commands = [("make setup", "install the dependencies (needs uv: https://docs.astral.sh/uv/)")]
    if answers["database"] == "postgresql":
        commands.append(("make migrate", "create the schema (set DATABASE_URL in .env first)"))
    elif answers["database"] != "none":
        commands.append(("make migrate", "create the database schema"))
    commands.append(("make run", "serve on http://localhost:8000"))
    if answers["worker"] != "none":
        commands.append(("make worker", "in another terminal: run the background jobs"))
    return "\n".join(
        [
            f"{answers['project_slug']} is ready in {project}",
            "",
            f"  cd {shlex.quote(project)}",
            *(f"  {command:<13}# {why}" for command, why in commands),
            "",
            "Its README.md has the rest.",
        ]
    )


def main(answers_json: str) -> int:
    answers = json.loads(answers_json)
    remove_paths(os.getcwd(), paths_to_remove(answers))
    print(next_steps(answers, os.getcwd()))
    return 0


if __name__ == "__main__":
    # Cookiecutter renders this file before running it: the answers arrive as JSON.
    sys.exit(main(r"""{{ cookiecutter | jsonify }}"""))
