"""`make bench`: measure the default service against its baselines, print and record the table.

Run from the template's root: `.venv/bin/python -m benchmarks.run [options]`.
Everything is built in a temp directory and removed afterwards; only the
output file (docs/performance.md by default) is written. The exit status is
0 when every measurement was taken, whether its target was met or missed:
this is a measuring tool, not a test.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from . import report
from .bake import bake_rows
from .lifecycle import (
    DEFAULT,
    READY_PATH,
    lifecycle_samples,
    shutdown_rows,
    start_probes,
    start_rows,
    under_load_samples,
)
from .load import (
    HEALTH_PATH,
    ITEM_PATH,
    WRK_MISSING,
    LoadSettings,
    load_rows,
    memory_rows,
    seed_item,
    wrk_available,
)
from .logcost import log_line_rows
from .otel import ANSWER as OPENTELEMETRY
from .otel import opentelemetry_rows
from .results import Row, seconds
from .servers import BenchError
from .subjects import (
    FRAMEWORKS,
    TEMPLATE,
    Framework,
    Project,
    Subject,
    Workspace,
    bake_service,
    bare,
    bare_with_database,
    migrate,
    service,
    sqlite_url,
    throwaway_database,
)
from .suites import generated_suite_rows, template_suite_rows

DEFAULT_OUTPUT = TEMPLATE / "docs" / "performance.md"


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def worker_counts(text: str) -> list[int]:
    return [positive(part) for part in text.split(",")]


def frameworks(text: str) -> list[str]:
    names = text.split(",")
    unknown = sorted(set(names) - set(FRAMEWORKS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown framework {', '.join(unknown)}; choose from {', '.join(FRAMEWORKS)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    add = parser.add_argument
    add("--runs", type=positive, default=5, help="repetitions of each measurement (default 5)")
    add(
        "--suite-runs",
        type=positive,
        default=3,
        help="repetitions of the long ones: the in-process matrix bake, test suites (default 3)",
    )
    add("--duration", type=positive, default=3, help="seconds per wrk run (default 3)")
    add("--connections", type=positive, default=16, help="wrk connections (default 16)")
    add("--threads", type=positive, default=1, help="wrk threads (default 1)")
    add(
        "--web-concurrency",
        type=worker_counts,
        default=[1, 2],
        help="worker counts to load, comma-separated (default 1,2)",
    )
    add(
        "--frameworks",
        type=frameworks,
        default=list(FRAMEWORKS),
        help=f"comma-separated (default {','.join(FRAMEWORKS)})",
    )
    add(
        "--combinations",
        type=positive,
        help="bake only the first N accepted combinations in-process (default all)",
    )
    add(
        "--suite-args",
        default="",
        help="extra pytest arguments for the generated suite, e.g. '-k settings' (default none)",
    )
    add(
        "--template-suite",
        action="store_true",
        help="also time the template's whole suite (takes minutes)",
    )
    add(
        "--opentelemetry-only",
        action="store_true",
        help="measure only the rows of the use_opentelemetry project (issue 15)",
    )
    add(
        "--output",
        type=Path,
        help="file to write the table into (default docs/performance.md;"
        " with --opentelemetry-only, none: the table is printed only)",
    )
    add("--note", default="", help="a line printed above the table, e.g. about the machine")
    return parser


def reproduce_command(options: argparse.Namespace) -> str:
    """The command line that takes these figures again, every setting spelled out."""
    args = [
        f"--runs={options.runs}",
        f"--suite-runs={options.suite_runs}",
        f"--duration={options.duration}",
        f"--connections={options.connections}",
        f"--threads={options.threads}",
        f"--web-concurrency={','.join(map(str, options.web_concurrency))}",
        f"--frameworks={','.join(options.frameworks)}",
    ]
    if options.combinations:
        args.append(f"--combinations={options.combinations}")
    if options.suite_args:
        args.append(f"--suite-args={options.suite_args}")
    if options.template_suite:
        args.append("--template-suite")
    if options.opentelemetry_only:
        args.append("--opentelemetry-only")
    return shlex.join([".venv/bin/python", "-m", "benchmarks.run", *args])


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def load_settings(options: argparse.Namespace) -> LoadSettings | None:
    """wrk's settings, or None without wrk: then the load rows say why they were skipped."""
    if wrk_available():
        return LoadSettings(options.duration, options.connections, options.threads)
    return None


def framework_rows(
    options: argparse.Namespace, workspace: Workspace, resources: ExitStack, name: str
) -> list[Row]:
    """Everything measured on one framework's default service, its bare apps, its options."""
    framework = FRAMEWORKS[name]
    progress(f"{name}: baking and installing the default project")
    project = bake_service(workspace, framework)
    database = sqlite_url(project)
    migrate(project, database)
    default = service(project, framework, database, DEFAULT)
    seed_item(default)  # the row GET /items/1 reads, on each side
    rows = []
    if not options.opentelemetry_only:
        rows += service_rows(options, resources, project, framework, default)

    progress(f"{name}: baking and installing the project with {OPENTELEMETRY}")
    traced = bake_service(workspace, framework, OPENTELEMETRY)
    progress(f"{name}: {OPENTELEMETRY}, without and with an OTLP endpoint")
    rows += opentelemetry_rows(
        default,
        service(traced, framework, database, DEFAULT),  # the same database and row
        framework,
        DEFAULT,
        options.runs,
        load_settings(options),
    )
    return rows


def service_rows(
    options: argparse.Namespace,
    resources: ExitStack,
    project: Project,
    framework: Framework,
    default: Subject,
) -> list[Row]:
    """The default service against its bare apps, on SQLite (`default`) and PostgreSQL."""
    name = framework.name
    services = {DEFAULT: default}
    with_database = {DEFAULT: bare_with_database(project, framework, sqlite_url(project), DEFAULT)}
    server_url = os.environ.get("TEST_DATABASE_URL")
    if server_url:
        url = resources.enter_context(throwaway_database(project, server_url))
        migrate(project, url)
        services["PostgreSQL"] = service(project, framework, url, "PostgreSQL")
        with_database["PostgreSQL"] = bare_with_database(project, framework, url, "PostgreSQL")
        seed_item(services["PostgreSQL"])
    baseline = bare(project, framework)

    progress(f"{name}: cold start and shutdown")
    # Shutdown under load goes first: its untimed starts compile the project's own bytecode.
    under_load = under_load_samples([default, baseline], options.runs)
    samples = lifecycle_samples(
        start_probes(services, with_database, baseline),
        options.runs,
        warm_up=[*services.values(), *with_database.values()][1:],
    )
    rows = start_rows(services, with_database, baseline, samples)
    if not server_url:
        rows += [
            Row(
                f"Cold start to first 200 on GET {path}: {name} service, PostgreSQL",
                seconds,
                skipped="TEST_DATABASE_URL is not set",
            )
            for path in (HEALTH_PATH, READY_PATH, ITEM_PATH)
        ]
    rows += shutdown_rows(default, baseline, samples, under_load)

    settings = load_settings(options)
    if settings:
        progress(f"{name}: memory, throughput and latency")
    else:
        progress(f"{name}: memory only; {WRK_MISSING}")
    rows += load_rows(
        default, baseline, with_database[DEFAULT], options.web_concurrency, options.runs, settings
    )
    rows += memory_rows(default, with_database[DEFAULT], baseline, options.runs)

    progress(f"{name}: log lines and the generated test suite")
    rows += log_line_rows(project, default.name, options.runs)
    rows += generated_suite_rows(
        project, default.name, options.suite_runs, shlex.split(options.suite_args)
    )
    return rows


def measure(options: argparse.Namespace, workspace: Workspace) -> list[Row]:
    rows = []
    if not options.opentelemetry_only:
        progress("CLI bakes and the in-process matrix bake")
        rows += bake_rows(workspace, options.runs, options.suite_runs, options.combinations)
    with ExitStack() as resources:  # throwaway databases, dropped however the run ends
        for name in options.frameworks:
            rows += framework_rows(options, workspace, resources, name)
    if options.template_suite and not options.opentelemetry_only:
        progress("the template's whole suite")
        rows += template_suite_rows(1)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            rows = measure(options, Workspace(Path(scratch)))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    context = report.Context(reproduce_command(options), options.note, load_before, os.getloadavg())
    text = report.section(rows, context)
    print(text)
    output = options.output or (None if options.opentelemetry_only else DEFAULT_OUTPUT)
    if output is None:  # a partial table never replaces the full record
        progress("not written anywhere: --output=FILE writes it")
        return 0
    report.write(output, text)
    progress(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
