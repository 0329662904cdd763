"""A real container engine for the image tests: Podman, and the base images it builds from.

No registry needs to be reachable. The Dockerfile's two base images are made
here once and cached: `python:3.11-slim` is Debian stable (which ships Python
3.11, and no other) made by debootstrap, kept as a tarball under the user's
cache directory and imported into Podman's image store; `ghcr.io/astral-sh/uv`
holds the uv binary of the template's own environment, as the official image
does. Both stay in the store between runs; the tests remove only what they make.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .conftest import missing

PODMAN = shutil.which("podman")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "twelve-factor-template"
# The one Python the base image can have: Debian stable's.
PYTHON_VERSION = "3.11"
BASE_IMAGE = f"docker.io/library/python:{PYTHON_VERSION}-slim"
UV_IMAGE = "ghcr.io/astral-sh/uv:0.13"
DEBIAN_SUITE = "bookworm"
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# Settings this machine's engine needs: crun fails on its hybrid cgroups, and
# raising the open-files limit is not permitted.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


def engine_env() -> dict[str, str]:
    """The environment every podman (and podman-compose) command runs in."""
    conf = CACHE / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        CACHE.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def require_podman() -> str:
    """The podman command; without it skip (fail under REQUIRE_BACKING_SERVICES=1)."""
    if PODMAN is None:
        missing("podman is not installed: the image is not built (apt-get install podman runc)")
    assert PODMAN is not None
    return PODMAN


def podman(
    *args: str, timeout: float = 300, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run podman; fail the test with its output when `check` and it exits non-zero."""
    return engine_command([require_podman(), *args], timeout, check, input_text)


def engine_command(
    command: list[str],
    timeout: float = 300,
    check: bool = True,
    input_text: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command that drives podman (podman, podman-compose) in the engine's environment."""
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**engine_env(), **(env or {})},
        input=input_text,
        cwd=cwd,
    )
    if check:
        assert result.returncode == 0, f"$ {' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result


def inspect(kind: str, name: str) -> dict[str, Any]:
    [found] = json.loads(podman(kind, "inspect", name).stdout)
    loaded: dict[str, Any] = found
    return loaded


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


@contextlib.contextmanager
def cache_lock(name: str = "images") -> Iterator[None]:
    """One process at a time holds `name` (xdist workers start together)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def base_rootfs_tarball() -> Path:
    """Debian stable with Python, as a tarball: made by debootstrap once, then cached."""
    tarball = CACHE / f"python-{PYTHON_VERSION}-{DEBIAN_SUITE}.tar"
    if tarball.exists():
        return tarball
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None or os.geteuid() != 0:
        missing(
            "making the base image needs debootstrap, run as root (apt-get install debootstrap)"
        )
    rootfs = CACHE / "rootfs.partial"
    shutil.rmtree(rootfs, ignore_errors=True)
    packages = f"python{PYTHON_VERSION},python3-venv,ca-certificates"
    subprocess.run(
        [str(debootstrap), "--variant=minbase", f"--include={packages}", DEBIAN_SUITE, str(rootfs)],
        capture_output=True,
        check=True,
        timeout=900,
    )
    # Builds reach the package index with the machine's CAs (it may have its own).
    shutil.copy(SYSTEM_CA, rootfs / SYSTEM_CA.relative_to("/"))
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    partial = tarball.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
    partial.rename(tarball)
    shutil.rmtree(rootfs)
    return tarball


def ensure_base_images() -> None:
    """Both images the Dockerfile starts FROM, in Podman's store."""
    with cache_lock():
        if not image_exists(BASE_IMAGE):
            podman(
                "import",
                "--change",
                f"ENV SSL_CERT_FILE={SYSTEM_CA}",
                # An imported image has no PATH; `kube play` gives it none either.
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                str(base_rootfs_tarball()),
                BASE_IMAGE,
            )
        if not image_exists(UV_IMAGE):
            uv = Path(sys.executable).with_name("uv")
            context = CACHE / "uv-image"
            context.mkdir(exist_ok=True)
            shutil.copy(uv, context / "uv")
            (context / "Containerfile").write_text("FROM scratch\nCOPY uv /uv\n")
            podman("build", "--pull=never", "-t", UV_IMAGE, str(context))


def build_image(project: Path, tag: str, release: str) -> None:
    """`podman build` of the project's Dockerfile, from the cached base images only.

    One build at a time (`building`): two xdist workers that need the same stack
    build it once and reuse its layers, rather than twice side by side on the same cores.
    """
    require_podman()
    ensure_base_images()
    with building():
        podman(
            "build",
            "--pull=never",
            "--build-arg",
            f"RELEASE_ID={release}",
            "-t",
            tag,
            str(project),
            timeout=900,
        )


def building() -> contextlib.AbstractContextManager[None]:
    """Held while a build runs, or images are removed, in any xdist worker.

    Builds share cached layers across stacks; an image removed by a worker whose
    session ended took them from under another worker's build ("layer not known").
    """
    return cache_lock("build")


def remove_images(*tags: str) -> None:
    """Remove images, and containers left on them, in one command (Podman does it in parallel)."""
    if tags:
        with building():
            podman("rmi", "--force", *tags, check=False)
