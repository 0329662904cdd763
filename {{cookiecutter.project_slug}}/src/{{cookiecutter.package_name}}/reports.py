"""The example background job: a report over every item, built by the worker.

The web process stores a queued report and enqueues `build_report`; the
worker process counts the items and marks the report done. The job is
idempotent (a done report is left as it is, an unfinished one is simply
built again), so a job delivered twice, e.g. after its worker died, is safe.
A job that fails for good, its retries spent, marks its report failed.
Replace it with your own jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .db import create_database_engine
from .logs import describe_exception
from .settings import Settings
from .tables import ERROR_MAX_LENGTH, Item, Report

logger = logging.getLogger(__name__)

Status = Literal["queued", "running", "done", "failed"]


def _in_utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ReportRead(BaseModel):
    """A report as the API returns it: its counts once done, its error once failed."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: Status
    item_count: int | None
    word_count: int | None
    created_at: Annotated[datetime, AfterValidator(_in_utc)]
    finished_at: Annotated[datetime | None, AfterValidator(_in_utc)]
    error: str | None


def request_report(session: Session, enqueue: Callable[[int], None]) -> ReportRead:
    """Store a queued report and enqueue its job; if the job cannot be enqueued, store nothing."""
    report = Report(status="queued", created_at=datetime.now(UTC))
    session.add(report)
    session.commit()
    try:
        enqueue(report.id)
    except Exception:
        session.delete(report)
        session.commit()
        raise
    return ReportRead.model_validate(report)


def get_report(session: Session, report_id: int) -> ReportRead | None:
    report = session.get(Report, report_id)
    return None if report is None else ReportRead.model_validate(report)


def build_report(session: Session, report_id: int) -> None:
    """The job: count the items and their words, then mark the report done."""
    started = session.scalar(
        update(Report)
        .where(Report.id == report_id, Report.status != "done")
        .values(status="running")
        .returning(Report.id)
    )
    session.commit()
    if started is None:
        logger.info("report already done or unknown", extra={"report_id": report_id})
        return
    item_count = word_count = 0
    rows = session.execute(select(Item.name, Item.description).execution_options(yield_per=1000))
    for name, description in rows:
        item_count += 1
        word_count += len(name.split()) + len((description or "").split())
    session.execute(
        update(Report)
        .where(Report.id == report_id)
        .values(
            status="done",
            item_count=item_count,
            word_count=word_count,
            finished_at=datetime.now(UTC),
        )
    )
    session.commit()
    logger.info(
        "report done",
        extra={"report_id": report_id, "item_count": item_count, "word_count": word_count},
    )


def run_build_report(settings: Settings, report_id: int) -> None:
    """Run the job in a process of its own: a database pool for the job, closed afterwards."""
    engine = create_database_engine(settings)
    try:
        with Session(engine) as session:
            build_report(session, report_id)
    finally:
        engine.dispose()


def fail_report(session: Session, report_id: int, error: str) -> None:
    """Mark the report failed for good, with why; a done report stays done."""
    session.execute(
        update(Report)
        .where(Report.id == report_id, Report.status != "done")
        .values(status="failed", error=error[:ERROR_MAX_LENGTH], finished_at=datetime.now(UTC))
    )
    session.commit()


def run_fail_report(settings: Settings, report_id: int, exc: BaseException) -> None:
    """The queue's failure hook, for a job out of retries: record the failure on the report."""
    error = describe_exception(exc)
    logger.error("report failed", extra={"report_id": report_id, "error": error})
    engine = create_database_engine(settings)
    try:
        with Session(engine) as session:
            fail_report(session, report_id, error)
    except SQLAlchemyError as db_error:  # e.g. the outage that failed the job: the log must do
        logger.error(
            "report not marked failed",
            extra={"report_id": report_id, "error": describe_exception(db_error)},
        )
    finally:
        engine.dispose()
