"""What a service's owner writes on day two, and small helpers to put it where it goes.

The day-two test (test_day_two.py) follows the generated README's section
"Growing the service" with these: each edit lands where that section says,
located in the module's syntax tree (the end of a class or function body),
never by matching the generated text. Imports are added as plain lines;
`make format` then sorts them in, as it does for an owner.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path


def _definition(module: Path, name: str) -> ast.FunctionDef | ast.ClassDef:
    """The top-level function or class `name` of a module."""
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
            return node
    raise AssertionError(f"{module.name} defines no {name}")


def _insert(
    module: Path, after_line: int, code: str, indent: int = 0, before: int = 0, after: int = 0
) -> None:
    """Insert `code` after line `after_line` (1-based), indented, between blank lines."""
    lines = module.read_text().splitlines(keepends=True)
    block = textwrap.indent(textwrap.dedent(code).strip("\n") + "\n", " " * indent)
    lines[after_line:after_line] = ["\n" * before, block, "\n" * after]
    module.write_text("".join(lines))


def add_imports(module: Path, *imports: str) -> None:
    """Add import lines after the module's last top-level import."""
    tree = ast.parse(module.read_text())
    last = max(n.end_lineno or 0 for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom))
    _insert(module, last, "\n".join(imports))


def add_after_assignment(module: Path, name: str, code: str) -> None:
    """Add top-level code just after the module-level assignment of `name`."""
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            _insert(module, node.end_lineno or node.lineno, code)
            return
    raise AssertionError(f"{module.name} assigns no {name}")


def add_to_body(module: Path, name: str, code: str) -> None:
    """Add statements at the end of the body of top-level class or function `name`.

    A function whose last statement is a `return` gets them before it.
    """
    node = _definition(module, name)
    last = node.body[-1]
    if isinstance(last, ast.Return):
        _insert(module, last.lineno - 1, code, last.col_offset, after=1)
        return
    _insert(module, last.end_lineno or last.lineno, code, node.col_offset + 4, before=1)


def add_before(module: Path, name: str, code: str) -> None:
    """Add top-level code just before the top-level class or function `name`."""
    node = _definition(module, name)
    first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    _insert(module, first - 1, code, after=2)


def append(module: Path, code: str) -> None:
    """Add top-level code at the end of a module."""
    text = module.read_text().rstrip("\n")
    module.write_text(f"{text}\n\n\n{textwrap.dedent(code).strip()}\n")


# --- Settings of several types (settings.py) ---------------------------------

SETTINGS_IMPORTS = ("from pydantic import AnyHttpUrl",)

SMTP_MODEL = '''
class Smtp(BaseModel):
    """The mail server notices go out through; set as SMTP__HOST and SMTP__PORT."""

    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
'''

SETTINGS_FIELDS = """
request_timeout: float = Field(2.5, gt=0, description="Seconds an outgoing call may take.")
allowed_hosts: list[str] = Field(
    default_factory=lambda: ["localhost"], description="Host names the service answers to."
)
partner_api_url: AnyHttpUrl = Field(
    AnyHttpUrl("https://partner.example/api"), description="Base URL of the partner's API."
)
export_dir: Path = Field(Path("exports"), description="Directory exports are written to.")
greeting_style: Literal["plain", "fancy"] = Field("plain", description="How notes greet.")
smtp: Smtp = Field(default_factory=Smtp, description="Mail server of the notices.")
"""

# --- A resource with its own table: notes ------------------------------------

NOTE_TABLE = """
class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(NOTE_MAX_LENGTH))
"""

NOTE_LENGTH = "NOTE_MAX_LENGTH = 500"

# The new module: SQLAlchemy and pydantic imported at its top, as anywhere.
NOTES_MODULE = '''
"""Notes: short texts, stored in the database."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from .tables import NOTE_MAX_LENGTH, Note


class NoteCreate(BaseModel):
    """The body of `POST /notes`."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=NOTE_MAX_LENGTH)


class NoteRead(BaseModel):
    """A note as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    text: str


def create_note(session: Session, data: NoteCreate) -> NoteRead:
    note = Note(text=data.text)
    session.add(note)
    session.commit()
    return NoteRead.model_validate(note)


def list_notes(session: Session) -> list[NoteRead]:
    found = session.scalars(select(Note).order_by(Note.id))
    return [NoteRead.model_validate(note) for note in found]
'''

NOTE_ROUTES = {
    "fastapi": '''
@app.post("/notes", status_code=201, tags=["notes"], dependencies=[Depends(require_json)])
def create_note(data: notes.NoteCreate, session: SessionDependency) -> notes.NoteRead:
    """Store a new note."""
    return notes.create_note(session, data)

@app.get("/notes", tags=["notes"])
def list_notes(session: SessionDependency) -> list[notes.NoteRead]:
    """Every note, oldest first."""
    return notes.list_notes(session)
''',
    "flask": '''
@app.post("/notes")
def create_note() -> ResponseReturnValue:
    """Store a new note."""
    if not request.is_json:
        return {"detail": NOT_JSON}, 415
    with validating("body"):
        data = notes.NoteCreate.model_validate_json(request_body())
    with database_session() as session:
        note = notes.create_note(session, data)
    return note.model_dump(mode="json"), 201

@app.get("/notes")
def list_notes() -> ResponseReturnValue:
    """Every note, oldest first."""
    with database_session() as session:
        found = notes.list_notes(session)
    return [note.model_dump(mode="json") for note in found]
''',
}

# The owner's tests of the resource: in-process, and through the real web process.
NOTES_TESTS = '''
"""Notes: stored, listed and validated, in-process and by the real web process."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from .processes import ServiceProcess


def test_a_note_is_stored_and_listed(client: httpx.Client) -> None:
    created = client.post("/notes", json={"text": "buy milk"})
    assert created.status_code == 201
    assert created.json()["text"] == "buy milk"
    assert created.json() in client.get("/notes").json()


def test_an_empty_note_is_refused(client: httpx.Client) -> None:
    response = client.post("/notes", json={"text": ""})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "text"]


@pytest.mark.processes
def test_the_web_process_serves_notes(web: ServiceProcess) -> None:
    created = httpx.post(f"{web.url}/notes", json={"text": "served"})
    assert created.status_code == 201
    assert created.json() in httpx.get(f"{web.url}/notes").json()
'''

# --- A background job: shout a note (upper-case its text) ---------------------

SHOUT_JOB = '''
def shout_note(session: Session, note_id: int) -> None:
    """The job: upper-case a note's text. Doing it twice changes nothing more."""
    note = session.get(Note, note_id)
    if note is not None:
        note.text = note.text.upper()
        session.commit()


def run_shout_note(settings: Settings, note_id: int) -> None:
    """Run the job in the worker: a database pool for the job, closed afterwards."""
    engine = create_database_engine(settings)
    try:
        with Session(engine) as session:
            shout_note(session, note_id)
    finally:
        engine.dispose()
'''

SHOUT_JOB_IMPORTS = ("from .db import create_database_engine", "from .settings import Settings")

# Registered beside build_report, and a JobQueue method to enqueue it, per library.
SHOUT_REGISTRATION = {
    "celery": {
        "constant": 'SHOUT_NOTE = f"{__package__}.shout_note"',
        "create_celery": """
def shout_note(note_id: int) -> None:
    notes.run_shout_note(settings, note_id)

app.task(name=SHOUT_NOTE)(shout_note)
""",
        "JobQueue": """
def enqueue_shout(self, note_id: int) -> None:
    try:
        self.celery.send_task(SHOUT_NOTE, args=[note_id], retry=False)
    except KombuOperationalError as exc:
        raise BrokerUnavailableError(str(exc)) from exc
""",
    },
    "rq": {
        "constant": 'SHOUT_NOTE = f"{__package__}.worker.shout_note"',
        "module": '''
def shout_note(note_id: int) -> None:
    """The job as RQ imports and calls it in the work horse."""
    notes.run_shout_note(load_settings(), note_id)
''',
        "JobQueue": """
def enqueue_shout(self, note_id: int) -> None:
    try:
        self.queue.enqueue(SHOUT_NOTE, note_id, retry=Retry(max=RETRIES), result_ttl=0)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise BrokerUnavailableError(str(exc)) from exc
""",
    },
}

SHOUT_ROUTE = {
    "fastapi": '''
@app.post("/notes/{note_id}/shout", status_code=202, tags=["notes"])
def shout_note(note_id: int, request: Request) -> dict[str, int]:
    """Queue the upper-casing of a note; the worker does it."""
    jobs: worker.JobQueue = request.app.state.jobs
    jobs.enqueue_shout(note_id)
    return {"id": note_id}
''',
    "flask": '''
@app.post("/notes/<int:note_id>/shout")
def shout_note(note_id: int) -> ResponseReturnValue:
    """Queue the upper-casing of a note; the worker does it."""
    jobs: worker.JobQueue = app.extensions["jobs"]
    jobs.enqueue_shout(note_id)
    return {"id": note_id}, 202
''',
}

SHOUT_TESTS = '''
"""The shout job: queued by the web process, done by the real worker process."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from .processes import ServiceProcess, StartService, wait_for


@pytest.mark.processes
@pytest.mark.usefixtures("redis_url")
def test_the_worker_shouts_a_note(
    web: ServiceProcess,
    procfile: dict[str, str],
    start_service: StartService,
    service_env: dict[str, str],
) -> None:
    note = httpx.post(f"{web.url}/notes", json={"text": "quiet please"}).json()
    assert httpx.post(f"{web.url}/notes/{note['id']}/shout").status_code == 202
    start_service(procfile["worker"], service_env)
    shouted = {"id": note["id"], "text": "QUIET PLEASE"}
    wait_for(lambda: shouted in httpx.get(f"{web.url}/notes").json(), "shouted", timeout=60)
'''
