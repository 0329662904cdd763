"""The web process's application: health, readiness{% if cookiecutter.database != "none" %} and the example resource{% if cookiecutter.worker != "none" %}s{% endif %}{% endif %}.

`create_app` is the factory uvicorn imports in every worker process; tests
call it with their own settings.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable{% if cookiecutter.database != "none" %}, Iterator{% endif %}
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import {% if cookiecutter.database != "none" %}Annotated, {% endif %}Any

from fastapi import {% if cookiecutter.database != "none" %}Depends, {% endif %}FastAPI, {% if cookiecutter.database != "none" %}HTTPException, Path, {% endif %}Request{% if cookiecutter.worker != "none" %}, Response{% endif %}
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
{%- if cookiecutter.database != "none" %}
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session
{%- endif %}
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import {% if cookiecutter.database != "none" %}db, items, {% endif %}logs{% if cookiecutter.worker != "none" %}, reports, worker{% endif %}
from .settings import Settings, load_settings

logger = logging.getLogger(__name__)
access_logger = logging.getLogger(f"{__package__}.access")

ReadinessCheck = Callable[[], None]
# An incoming X-Request-ID is kept only if it is safe to log and echo.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
{%- if cookiecutter.database != "none" %}
    engine = db.create_database_engine(settings)
{%- endif %}
{%- if cookiecutter.worker != "none" %}
    jobs = worker.JobQueue(settings)
{%- endif %}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
{%- if cookiecutter.database != "none" %}
        engine.dispose()
        logger.info("database pool closed")
{%- if cookiecutter.worker != "none" %}
        jobs.close()
{%- endif %}
{%- else %}
        logger.info("application stopped")
{%- endif %}

    app = FastAPI(
        title="{{ cookiecutter.project_name }}",
        version=version("{{ cookiecutter.project_slug }}"),
        lifespan=lifespan,
        docs_url="/docs" if settings.api_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    app.add_middleware(RequestContextMiddleware)
{%- if cookiecutter.database != "none" %}
    app.state.engine = engine
{%- if cookiecutter.worker != "none" %}
    app.state.jobs = jobs
    app.state.readiness_checks = {"database": lambda: db.ping(engine), "broker": jobs.ping}
    app.add_exception_handler(worker.BrokerUnavailableError, broker_unavailable)
{%- else %}
    app.state.readiness_checks = {"database": lambda: db.ping(engine)}
{%- endif %}
    app.add_exception_handler(OperationalError, database_unavailable)
    app.add_exception_handler(InterfaceError, database_unavailable)
    app.add_exception_handler(PoolTimeoutError, database_unavailable)
{%- else %}
    app.state.readiness_checks = {}
{%- endif %}
    add_routes(app)
    return app


class RequestContextMiddleware:
    """Give each request an id (echoed as X-Request-ID, logged on every line) and log it once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        current_id = incoming if REQUEST_ID_PATTERN.fullmatch(incoming) else uuid.uuid4().hex
        token = logs.request_id.set(current_id)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before responding

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", current_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            logs.request_id.reset(token)
{%- if cookiecutter.database != "none" %}


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # An outage is the database's, not a bug: answer fast with 503 so clients retry.
    logger.warning("database unavailable", extra={"error": logs.describe_exception(exc)})
    return JSONResponse({"detail": "database unavailable"}, status_code=503)
{%- if cookiecutter.worker != "none" %}


async def broker_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Nothing was enqueued (and no report kept): the client may simply retry.
    logger.warning("broker unavailable", extra={"error": logs.describe_exception(exc)})
    return JSONResponse({"detail": "broker unavailable"}, status_code=503)
{%- endif %}


def get_session(request: Request) -> Iterator[Session]:
    engine: Engine = request.app.state.engine
    with Session(engine) as session:
        yield session


SessionDependency = Annotated[Session, Depends(get_session)]
ItemId = Annotated[int, Path(ge=1, le=items.MAX_ID, description="The item's id.")]
{%- if cookiecutter.worker != "none" %}
ReportId = Annotated[int, Path(ge=1, le=items.MAX_ID, description="The report's id.")]
{%- endif %}
{%- endif %}


def add_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP. Touches no backing service."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "Not ready"}})
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: every backing service answers. 503 names the ones that do not."""
        checks: dict[str, ReadinessCheck] = request.app.state.readiness_checks
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await run_in_threadpool(check)
            except Exception as exc:  # any failure means not ready
                results[name] = logs.describe_exception(exc)
            else:
                results[name] = "ok"
        ready = all(result == "ok" for result in results.values())
        body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)
{%- if cookiecutter.database != "none" %}

    @app.post("/items", status_code=201, tags=["items"])
    def create_item(data: items.ItemCreate, session: SessionDependency) -> items.ItemRead:
        """Store a new item; the response carries its id."""
        return items.create_item(session, data)

    @app.get("/items/{item_id}", tags=["items"], responses={404: {"description": "No such item"}})
    def read_item(item_id: ItemId, session: SessionDependency) -> items.ItemRead:
        """One item by id."""
        item = items.get_item(session, item_id)
        if item is None:
            raise HTTPException(status_code=404, detail=f"item {item_id} not found")
        return item
{%- endif %}
{%- if cookiecutter.worker != "none" %}

    @app.post(
        "/reports",
        status_code=202,
        tags=["reports"],
        responses={503: {"description": "Broker unavailable; nothing was queued"}},
    )
    def create_report(
        request: Request, response: Response, session: SessionDependency
    ) -> reports.ReportRead:
        """Queue a report over every item; the worker builds it. Poll the Location it answers."""
        jobs: worker.JobQueue = request.app.state.jobs
        report = reports.request_report(session, jobs.enqueue_report)
        response.headers["Location"] = f"/reports/{report.id}"
        return report

    @app.get(
        "/reports/{report_id}", tags=["reports"], responses={404: {"description": "No such report"}}
    )
    def read_report(report_id: ReportId, session: SessionDependency) -> reports.ReportRead:
        """One report by id: queued, running, or done with its counts."""
        report = reports.get_report(session, report_id)
        if report is None:
            raise HTTPException(status_code=404, detail=f"report {report_id} not found")
        return report
{%- endif %}
