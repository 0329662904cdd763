"""The generated FastAPI service survives schemathesis: no generated request gets a 5xx.

The real processes run as on a platform: the release (`migrate`), then `serve`
and `worker`, with a private Redis, so every operation, /reports included,
is exercised end to end. Schemathesis reads the served OpenAPI schema
(API_DOCS=true) and runs all its checks, each operation with a bounded number
of examples.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.servers import Server, free_port

from .conftest import dev_tool, project_env, run, stack_key

# A suite stack, observed: schemathesis's inputs go through the observability options' code too.
STACK = {
    "web_framework": "fastapi",
    "database": "sqlite",
    "worker": "rq",
    "use_opentelemetry": True,
    "use_sentry": True,
}
SCHEMATHESIS = dev_tool("st")
MAX_EXAMPLES = 20

pytestmark = pytest.mark.xdist_group(stack_key(STACK))  # shares the bake of the generated suite


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis of this test's own, so its jobs meet no other test's."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        redis.terminate()
        redis.wait(30)


def test_no_generated_request_is_a_server_error(
    baked_project: Callable[..., Path], private_redis: str, tmp_path: Path
) -> None:
    project = baked_project(**STACK)
    command = str(project / ".venv" / "bin" / "my-service")
    port = free_port()
    env = project_env(
        PORT=str(port),
        API_DOCS="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'service.sqlite3'}",
        REDIS_URL=private_redis,
    )
    run([command, "migrate"], tmp_path, env)
    worker_dir = tmp_path / "worker"  # Server names its log files by port; the worker binds none
    worker_dir.mkdir()
    with (
        Server([command, "serve"], env=env, cwd=tmp_path, port=port) as web,
        Server([command, "worker"], env=env, cwd=worker_dir, port=port),
    ):
        web.wait_until_serving()
        result = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks=all",
                f"--max-examples={MAX_EXAMPLES}",
                "--seed=1",
                "--generation-database=none",
                "--no-color",
                f"--report-dir={tmp_path / 'report'}",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        events = [json.loads(line) for line in web.log_path.read_text().splitlines()]
    assert result.returncode == 0, result.stdout + result.stderr
    answered = [event["status"] for event in events if event["event"] == "request"]
    assert answered
    assert max(answered) < 500
    assert not [event for event in events if "exception" in event]
