"""Port binding (VII) and disposability (IX): the web process serves HTTP itself.

uvicorn is embedded: `serve` binds 0.0.0.0:$PORT with WEB_CONCURRENCY worker
processes. On SIGTERM or SIGINT it stops accepting connections, lets requests
in flight finish for up to GRACEFUL_TIMEOUT seconds, runs the app's shutdown
(closing its pools) and exits 0.
"""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn

from .logs import logging_config
from .settings import Settings


def serve(settings: Settings) -> None:
    exit_zero_on_stop_signals()
    uvicorn.run(
        f"{__package__}.app:create_app",
        factory=True,
        host="0.0.0.0",
        port=settings.port,
        workers=settings.web_concurrency,
        log_config=logging_config(settings),
        access_log=False,  # the app logs one access line per request, with its id
        timeout_graceful_shutdown=settings.graceful_timeout,
        server_header=False,
    )


def exit_zero_on_stop_signals() -> None:
    """Make a requested stop exit 0.

    uvicorn handles SIGTERM and SIGINT itself, drains, then restores the
    previous handlers and raises the signal again. Left at the default, that
    second SIGTERM would end the process with status 143 after a clean
    shutdown; platforms would report a crash.
    """

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
