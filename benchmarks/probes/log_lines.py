"""Time one log line of a baked service's logger, and of the stdlib's, to /dev/null.

Run by the service's own interpreter: `python log_lines.py <package> <lines>`.
Prints {"service": seconds, "stdlib": seconds}, each per line. Both loggers
write the access line the service writes per request, inside a request id.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time


def seconds_per_line(logger: logging.Logger, lines: int) -> float:
    fields = {"method": "GET", "path": "/healthz", "status": 200, "duration_ms": 0.42}
    started = time.perf_counter_ns()
    for _ in range(lines):
        logger.info("request", extra=fields)
    return (time.perf_counter_ns() - started) / 1e9 / lines


def main(package: str, lines: int) -> None:
    logs = importlib.import_module(f"{package}.logs")
    settings = importlib.import_module(f"{package}.settings")
    results = sys.stdout
    # The service's handler writes to sys.stdout as configured; point it at /dev/null.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    # The defaults and these two only: no .env, none of the caller's variables.
    logs.configure_logging(settings.load_settings({"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}))
    token = logs.request_id.set("0123456789abcdef0123456789abcdef")
    service = seconds_per_line(logging.getLogger(f"{package}.access"), lines)
    logs.request_id.reset(token)

    logging.root.handlers.clear()
    logging.basicConfig(
        stream=sys.stdout, level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    stdlib = seconds_per_line(logging.getLogger("baseline.access"), lines)
    print(json.dumps({"service": service, "stdlib": stdlib}), file=results)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
