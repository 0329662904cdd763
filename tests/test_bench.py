"""The benchmark harness runs end to end on a tiny setting, so that it cannot rot.

Nothing here judges a figure: timings belong to `make bench`. The tests check
what the harness reports: every row is measured or says why not, every target
of the issue is listed as PASS, MISS or SKIP, the printed command takes the
same settings again, and the results land between the output file's markers.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report, run
from benchmarks.load import parse_wrk
from benchmarks.otel import Collector, Sides
from benchmarks.results import seconds
from benchmarks.run import build_parser, reproduce_command
from benchmarks.servers import BenchError, request
from benchmarks.subjects import Project, Subject

from .conftest import TEMPLATE

# The harness runs once per module: keep its tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("bench")

# Few repetitions, one-second loads, two combinations, a slice of the generated suite.
TINY = [
    "--runs=1",
    "--suite-runs=1",
    "--duration=1",
    "--web-concurrency=1",
    "--combinations=2",
    "--suite-args=-k settings",
]
FRAMEWORKS = ("fastapi", "flask")
UNUSED_OTEL = "service with use_opentelemetry, no endpoint, SQLite"
EXPORTING = "service with use_opentelemetry, OTLP endpoint set, SQLite"
TARGETS = {
    "CLI bake, default answers ≤ 1.5x",
    *(
        target
        for framework in FRAMEWORKS
        for target in (
            f"Cold start to first 200 on GET /readyz: {framework} service, SQLite ≤ 1.1x",
            f"Cold start to first 200 on GET /items/1: {framework} service, SQLite ≤ 1.1x",
            f"SIGTERM to exit, idle: {framework} service, SQLite < 300 ms",
            f"RSS after warm-up, 1 process: {framework} service, SQLite ≤ 1.3x",
            f"Requests/s, GET /healthz, 1 process: {framework} service, SQLite ≥ 0.8x",
            f"p99 latency, GET /healthz, 1 process: {framework} service, SQLite ≤ 1.3x",
            f"Requests/s, GET /items/1, 1 process: {framework} service, SQLite ≥ 0.9x",
            f"p99 latency, GET /items/1, 1 process: {framework} service, SQLite ≤ 1.2x",
            # Issue 15: the option without an endpoint, against the service without it.
            f"Cold start to first 200 on GET /readyz: {framework} {UNUSED_OTEL} ≤ 1.05x",
            f"Cold start to first 200 on GET /items/1: {framework} {UNUSED_OTEL} ≤ 1.05x",
            f"Requests/s, GET /items/1, 1 process: {framework} {UNUSED_OTEL} ≥ 0.95x",
            f"p99 latency, GET /items/1, 1 process: {framework} {UNUSED_OTEL} ≤ 1.05x",
        )
    ),
}
# Which baseline each compared row is held to: a start or a load on a path that needs the
# database, against the bare app + SQLAlchemy answering the same request.
BASELINES = {
    "Cold start to first 200 on GET /healthz: {} service": "bare {} ({}), GET /healthz",
    "Cold start to first 200 on GET /readyz: {} service, SQLite": (
        "bare {} + SQLAlchemy ({}), SQLite, GET /readyz"
    ),
    "Cold start to first 200 on GET /items/1: {} service, SQLite": (
        "bare {} + SQLAlchemy ({}), SQLite, GET /items/1"
    ),
    "p99 latency, GET /healthz, 1 process: {} service, SQLite": "bare {} ({}), GET /healthz",
    "p99 latency, GET /items/1, 1 process: {} service, SQLite": (
        "bare {} + SQLAlchemy ({}), SQLite, GET /items/1"
    ),
    # Issue 15: the project with use_opentelemetry, against the same project without it.
    **{
        f"{figure}: {{}} {side}": f"{{}} service, SQLite, GET {path}"
        for side in (UNUSED_OTEL, EXPORTING)
        for figure, path in (
            ("Cold start to first 200 on GET /readyz", "/readyz"),
            ("Cold start to first 200 on GET /items/1", "/items/1"),
            ("Requests/s, GET /items/1, 1 process", "/items/1"),
            ("p99 latency, GET /items/1, 1 process", "/items/1"),
            ("CPU per request, GET /items/1, 1 process", "/items/1"),
        )
    },
}
SERVERS = {"fastapi": "uvicorn", "flask": "gunicorn"}
# A median as the table prints it: a number and its unit (none for a count). A cost per
# request is a difference, negative when the noise is larger than the cost.
FIGURE = re.compile(r"^-?[\d,.]+( (s|ms|µs|MiB|req/s)|%)?$")

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8000/healthz
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.20ms  20.01ms   90.00%
    Req/Sec     5.20k   300.00     5.60k    70.00%
  Latency Distribution
     50%    2.90ms
     75%    3.30ms
     90%    4.10ms
     99%  812.00us
  5200 requests in 1.00s, 0.90MB read
Requests/sec:   5195.50
Transfer/sec:      0.90MB
"""


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The harness's printed output and the copy of docs/performance.md it wrote into."""
    output = tmp_path_factory.mktemp("bench") / "performance.md"
    shutil.copy(TEMPLATE / "docs" / "performance.md", output)
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *TINY, f"--output={output}"],
        cwd=TEMPLATE,
        env={**os.environ, "TMPDIR": str(output.parent)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, output


def table_rows(text: str) -> dict[str, dict[str, str]]:
    """The results table, by measurement name: column name -> cell."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header, *body = ([cell.strip() for cell in line.strip("|").split(" | ")] for line in lines)
    return {cells[0]: dict(zip(header, cells, strict=True)) for cells in body}


def test_every_row_is_measured_or_says_why_not(bench_run: tuple[str, Path]) -> None:
    rows = table_rows(bench_run[0])
    unmeasured = {
        name: row["Median"] for name, row in rows.items() if not FIGURE.match(row["Median"])
    }
    expected_skips = {}
    if not os.environ.get("TEST_DATABASE_URL"):
        for framework in FRAMEWORKS:
            for path in ("/healthz", "/readyz", "/items/1"):
                name = f"Cold start to first 200 on GET {path}: {framework} service, PostgreSQL"
                expected_skips[name] = "skipped: TEST_DATABASE_URL is not set"
    if not shutil.which("wrk"):
        load_rows = {name: row["Median"] for name, row in rows.items() if ", GET " in name}
        assert load_rows
        assert all("wrk not found: install it" in reason for reason in load_rows.values())
        expected_skips |= load_rows
    assert unmeasured == expected_skips


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_family_has_its_rows(bench_run: tuple[str, Path], framework: str) -> None:
    names = [name for name in table_rows(bench_run[0]) if "bake" in name or framework in name]
    for family in (
        "CLI bake",
        "In-process bake, the first 2 accepted combinations",
        "Cold start to first 200 on GET /healthz",
        "Cold start to first 200 on GET /readyz",
        "Cold start to first 200 on GET /items/1",
        "SIGTERM to exit, idle",
        "clients in flight",
        "Requests dropped",
        "RSS after warm-up",
        "Requests/s, GET /healthz",
        "Cost per access log line",
        "Generated project's tests (pytest -m 'not processes' -k settings)",
        "Generated project's tests (pytest -k settings)",
        # Without wrk, each load run is one row saying so, with no latency rows.
        *(["p99 latency, GET /items/1"] if shutil.which("wrk") else []),
        f"Cold start to first 200 on GET /readyz: {framework} {UNUSED_OTEL}",
        f"Cold start to first 200 on GET /items/1: {framework} {EXPORTING}",
        f"Requests/s, GET /items/1, 1 process: {framework} {UNUSED_OTEL}",
        f"Cost per request, GET /items/1, 1 process: {framework} {EXPORTING}",
        f"CPU per request, GET /items/1, 1 process: {framework} {UNUSED_OTEL}",
    ):
        assert any(family in name for name in names), family


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("row", BASELINES, ids=lambda row: row.split(":")[0])
def test_each_row_is_held_to_its_baseline(
    bench_run: tuple[str, Path], row: str, framework: str
) -> None:
    rows = table_rows(bench_run[0])
    # Rows that could not be measured (no wrk, no PostgreSQL) say why in the other tests.
    measured = [
        name
        for name in rows
        if name.startswith(row.format(framework)) and not rows[name]["Median"].startswith("skipped")
    ]
    assert measured or (not shutil.which("wrk") and ", GET " in row)
    for name in measured:
        assert rows[name]["Baseline"] == BASELINES[row].format(framework, SERVERS[framework])
        assert re.fullmatch(r"\d+\.\d\dx", rows[name]["Ratio"]), rows[name]


def test_every_target_is_listed_with_its_outcome(bench_run: tuple[str, Path]) -> None:
    listed = re.findall(r"^- (PASS|MISS|SKIP): (.+)$", bench_run[0], flags=re.MULTILINE)
    assert {target for _, target in listed} == TARGETS
    wrk_missing = shutil.which("wrk") is None
    skipped = {target for outcome, target in listed if outcome == "SKIP"}
    assert skipped == ({t for t in TARGETS if ", GET " in t} if wrk_missing else set())


def test_printed_command_takes_the_same_settings(bench_run: tuple[str, Path]) -> None:
    command = re.search(r"Reproduce with `(.+)`", bench_run[0])
    assert command is not None
    argv = shlex.split(command[1])
    assert argv[:3] == [".venv/bin/python", "-m", "benchmarks.run"]
    parser = build_parser()
    assert vars(parser.parse_args(argv[3:])) == vars(parser.parse_args(TINY))


def test_results_replace_only_the_marked_section(bench_run: tuple[str, Path]) -> None:
    printed, output = bench_run
    original = (TEMPLATE / "docs" / "performance.md").read_text()
    written = output.read_text()
    outside = re.compile(rf"{re.escape(report.BEGIN)}.*?{re.escape(report.END)}", re.DOTALL)
    assert outside.sub("", written) == outside.sub("", original)
    assert f"{report.BEGIN}\n{printed.rstrip()}\n{report.END}" in written


def test_a_file_without_markers_is_not_overwritten(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# My notes\n")
    with pytest.raises(SystemExit, match="no <!-- bench:results:begin -->"):
        report.write(notes, "| table |\n")
    assert notes.read_text() == "# My notes\n"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1234.4, "1234 s"),
        (1.974, "1.97 s"),
        (0.9996, "1 s"),  # not "1e+03 ms"
        (0.0841, "84.1 ms"),
        (0.00099996, "1 ms"),  # not "1e+03 µs"
        (14.94e-6, "14.9 µs"),
    ],
)
def test_seconds_are_shown_in_the_unit_of_their_rounded_figure(value: float, shown: str) -> None:
    assert seconds(value) == shown
    assert FIGURE.match(shown)


def test_wrk_percentiles_are_read_in_seconds() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert (result.requests_per_second, result.requests) == (5195.5, 5200)
    assert result.p50 == pytest.approx(2.9e-3)
    assert result.p99 == pytest.approx(812e-6)


def test_wrk_failed_requests_invalidate_the_run() -> None:
    failing = WRK_OUTPUT.replace("Requests/sec", "  Non-2xx or 3xx responses: 7\nRequests/sec")
    with pytest.raises(BenchError, match="Non-2xx or 3xx responses: 7"):
        parse_wrk(failing)


@pytest.mark.parametrize(
    ("value", "shown"), [(-14.94e-6, "-14.9 µs"), (-0.0012, "-1.2 ms"), (-1.5, "-1.5 s")]
)
def test_a_negative_difference_is_shown_in_the_unit_of_its_size(value: float, shown: str) -> None:
    assert seconds(value) == shown
    assert FIGURE.match(shown)


def test_the_opentelemetry_only_run_is_reproduced() -> None:
    parser = build_parser()
    options = parser.parse_args([*TINY, "--opentelemetry-only"])
    argv = shlex.split(reproduce_command(options))
    assert "--opentelemetry-only" in argv
    assert vars(parser.parse_args(argv[3:])) == vars(options)


def test_the_callers_observability_settings_do_not_reach_the_services(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "SENTRY_DSN"):
        monkeypatch.setenv(name, "from the caller's shell")
    env = Project(tmp_path, "my-service", "my_service").env(LOG_LEVEL="INFO")
    assert not [name for name in env if name.startswith(("OTEL_", "SENTRY_"))]
    assert env["LOG_LEVEL"] == "INFO"


def test_the_otlp_receiver_answers_exports_and_counts_them() -> None:
    with Collector() as collector:
        port = int(collector.endpoint.rsplit(":", 1)[1])
        assert request(port, "POST", "/v1/traces", {"spans": 1}) == (200, b"")
        assert request(port, "POST", "/v1/traces", {"spans": 2}) == (200, b"")
        assert request(port, "POST", "/v1/metrics", {}) == (200, b"")
        assert request(port, "POST", "/v1/logs", {})[0] == 404
        assert collector.exports == {"/v1/traces": 2, "/v1/metrics": 1}
        assert collector.bytes["/v1/traces"] == len('{"spans": 1}') * 2


def test_each_side_takes_each_place_in_turn(tmp_path: Path) -> None:
    plain, idle, exporting = (
        Subject(name, lambda _port, _workers: [], {}, tmp_path) for name in ("a", "b", "c")
    )
    sides = Sides(plain, idle, exporting)
    orders = [[subject.name for subject in sides.in_turn(run)] for run in range(4)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_a_partial_table_is_written_only_where_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = TEMPLATE / "docs" / "performance.md"
    before = record.read_text()
    monkeypatch.setattr(run, "measure", lambda _options, _workspace: [])
    assert run.main(["--opentelemetry-only"]) == 0
    assert "not written anywhere" in capsys.readouterr().err
    assert record.read_text() == before
    assert run.main(["--opentelemetry-only", f"--output={tmp_path / 'otel.md'}"]) == 0
    assert (tmp_path / "otel.md").read_text().startswith(report.BEGIN)
