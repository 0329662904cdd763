"""Admin processes (XII): one console script is the entry point of every process.

`serve` is the web process; the other subcommands are one-off admin tasks.
All of them load the same settings and logging as the web process, so an
admin task sees exactly the configuration the service runs with.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import metadata
from typing import NoReturn

from . import {% if cookiecutter.database != "none" %}db, {% endif %}logs{% if cookiecutter.worker != "none" %}, worker{% endif %}
from .settings import ConfigError, Settings, dotenv_example, effective_config, load_settings

PROG = "{{ cookiecutter.project_slug }}"
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h: the configuration is wrong

logger = logging.getLogger(__name__)
Command = Callable[[Settings], int]


def serve(settings: Settings) -> NoReturn:
{%- if cookiecutter.web_framework == "flask" %}
    # Imported once the settings are valid: gunicorn reads WEB_CONCURRENCY as it is imported,
    # and a bad value must be a config error, not a traceback.
{%- else %}
    # Imported by the web process alone, once the settings are valid.
{%- endif %}
    from . import server

    try:
        server.serve(settings)
    except SystemExit as stop:  # how the server, and each gunicorn worker, ends its process
        exit_at_once(stop.code)
    exit_at_once(0)


def exit_at_once(code: str | int | None) -> NoReturn:
    """End a web process that has stopped: its requests are answered, its pools closed.

    Only the logs are left to flush. The interpreter's teardown (finalising
    every module loaded) has nothing to release, yet adds 0.1-0.3 s to each
    stop, seconds on a busy machine.
    """
    if isinstance(code, str):  # a message to print: leave it to the interpreter
        raise SystemExit(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
{%- if cookiecutter.database != "none" %}


def migrate(settings: Settings) -> int:
    engine = db.create_database_engine(settings)
    try:
        db.migrate(engine)
    except db.DATABASE_OUTAGES as exc:
        logger.error(
            "migration failed: database unavailable",
            extra={"error": logs.describe_exception(exc)},
        )
        return 1
    except OSError as exc:  # the SQLite file's directory could not be made
        logger.error(
            "migration failed: cannot create the database's directory",
            extra={"error": logs.describe_exception(exc)},
        )
        return 1
    finally:
        engine.dispose()
    logger.info("database schema is up to date")
    return 0
{%- endif %}


def check_config(settings: Settings) -> int:
    for name, value in effective_config(settings).items():
        print(f"{name}={value}")
    return 0


COMMANDS: dict[str, tuple[Command, str]] = {
    "serve": (serve, "run the web process: bind $PORT and serve HTTP until SIGTERM"),
{%- if cookiecutter.database != "none" %}
    "migrate": (migrate, "upgrade the database schema to the newest migration (the release phase)"),
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    "worker": (worker.run, "run the worker process: take jobs from the queue until SIGTERM"),
{%- endif %}
    "check-config": (
        check_config,
        "validate the environment and print the effective config, secrets masked",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=metadata(PROG)["Summary"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, description=help_text)
    commands.add_parser(
        "env-example",
        help="print .env.example: every setting with its description and default",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "env-example":
        print(dotenv_example(), end="")
        return 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        for line in exc.lines:
            print(f"config error: {line}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure_logging(settings)
    command, _ = COMMANDS[args.command]
{%- if cookiecutter.use_opentelemetry or cookiecutter.use_sentry %}
    # Each web worker process observes itself (see app.observe); check-config only prints.
    if args.command in ("serve", "check-config"):
        return command(settings)
    stops = observe(settings)
    try:
        return command(settings)
    finally:
        for stop in stops:
            stop()


def observe(settings: Settings) -> list[Callable[[], None]]:
    """Report errors and send telemetry where the environment asks; what to call at exit.

    Each library is imported only by a process that uses it: loading them adds up to
    0.1 s to every start.
    """
    stops: list[Callable[[], None]] = []
{%- if cookiecutter.use_sentry %}
    if settings.reports_errors:
        from . import error_reporting

        error_reporting.start(settings)
        stops.append(error_reporting.flush)
{%- endif %}
{%- if cookiecutter.use_opentelemetry %}
    if settings.exports_telemetry:
        from . import telemetry

        telemetry.start(settings)
        telemetry.instrument_processes()
        stops.append(telemetry.stop)
{%- endif %}
    return stops
{%- else %}
    return command(settings)
{%- endif %}
