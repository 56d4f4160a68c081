"""The Docker tier: a Docker daemon for the session (the running one, else a private
dockerd started here and stopped after), an image imported from a minimal root filesystem
(no registry is needed), and containers that run this interpreter with the installed
pycgroup bind-mounted read-only."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid

import pytest

import pycgroup

LABEL = "pycgroup-test"


class Docker:
    """Runs the docker client against one daemon."""

    def __init__(self, client: str, host: str | None):
        self.client, self.host = client, host

    def __call__(self, *args, check=True, timeout=300, **kwargs) -> subprocess.CompletedProcess:
        command = [self.client, *(["-H", self.host] if self.host else []), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              **kwargs)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args[:3])} failed: {done.stderr.strip()}")
        return done

    def info(self, field: str) -> str:
        return self("info", "--format", "{{." + field + "}}").stdout.strip()


def _start_dockerd(client: str, workdir: str):
    """Starts a private dockerd; returns (process, host) or (None, why it did not start)."""
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        return None, "no dockerd on PATH (.ci/provision.d/20-docker.sh installs docker.io)"
    host = "unix://" + os.path.join(workdir, "docker.sock")
    log = open(os.path.join(workdir, "dockerd.log"), "w")
    daemon = subprocess.Popen(
        [dockerd, "--iptables=false", "--bridge=none",
         "--exec-opt", "native.cgroupdriver=cgroupfs",
         "--data-root", os.path.join(workdir, "data"),
         "--exec-root", os.path.join(workdir, "exec"),
         "--pidfile", os.path.join(workdir, "dockerd.pid"), "--host", host],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    docker = Docker(client, host)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            break
        if docker("info", check=False, timeout=30).returncode == 0:
            return daemon, host
        time.sleep(0.5)
    _stop(daemon)
    with open(os.path.join(workdir, "dockerd.log")) as f:
        tail = f.read()[-600:]
    return None, f"dockerd did not start: {tail}"


def _stop(daemon: subprocess.Popen) -> None:
    if daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


@pytest.fixture(scope="session")
def docker():
    """A Docker client bound to a daemon: the one running, else a private dockerd
    (cgroupfs driver, no networking, its own data root) stopped at the end."""
    if os.geteuid() != 0:
        pytest.skip("starting dockerd and reading containers' cgroups needs root")
    client = shutil.which("docker")
    if client is None:
        pytest.skip("no docker client on PATH (.ci/provision.d/20-docker.sh installs docker.io)")
    workdir = tempfile.mkdtemp(prefix="pycgroup-dockerd-")
    daemon = None
    try:
        if Docker(client, os.environ.get("DOCKER_HOST")) \
                ("info", check=False, timeout=30).returncode == 0:
            docker = Docker(client, os.environ.get("DOCKER_HOST"))
        else:
            daemon, host = _start_dockerd(client, workdir)
            if daemon is None:
                pytest.skip(host)
            docker = Docker(client, host)
        yield docker
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
    finally:
        if daemon is not None:
            _stop(daemon)
        shutil.rmtree(workdir, ignore_errors=True)


def _root_tar() -> bytes:
    """A minimal root filesystem: the directories a container needs, /etc's user files and,
    where the host has merged /usr, the /bin and /lib links into it (/usr itself and the
    interpreter are bind-mounted read-only)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name, kind=tarfile.DIRTYPE, mode=0o755, target="", data=b""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname, info.size = kind, mode, target, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for name in ("proc", "sys", "dev", "etc", "run", "root", "usr", "var"):
            add(name)
        add("tmp", mode=0o1777)
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            if os.path.islink("/" + name):
                add(name, tarfile.SYMTYPE, target=os.readlink("/" + name))
        add("etc/passwd", tarfile.REGTYPE, 0o644, data=b"root:x:0:0:root:/root:/bin/sh\n")
        add("etc/group", tarfile.REGTYPE, 0o644, data=b"root:x:0:\n")
    return buffer.getvalue()


def _installed() -> str:
    """The directory pycgroup is imported from (a site-packages, or a PYTHONPATH entry)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(pycgroup.__file__)))


def _mounts() -> list:
    """The host directories a container needs, read-only at the same paths: /usr (and /bin,
    /lib... where they are not links into it), the interpreter, its environment and the
    installed pycgroup."""
    paths = ["/usr"]
    paths += ["/" + n for n in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
              if os.path.isdir("/" + n) and not os.path.islink("/" + n)]
    for path in (sys.base_prefix, sys.prefix, _installed()):
        path = os.path.realpath(path)
        if not any(path == p or path.startswith(p + "/") for p in paths):
            paths.append(path)
    return [arg for p in paths for arg in ("--mount", f"type=bind,src={p},dst={p},readonly")]


@pytest.fixture(scope="session")
def image(docker):
    """The name of an image imported from _root_tar(), removed at the end."""
    name = f"pycgroup-test:{uuid.uuid4().hex[:10]}"
    docker("import", "-", name, input=_root_tar().decode("latin-1"), encoding="latin-1")
    yield name
    docker("rmi", "-f", name, check=False)


class Container:
    """A running container, its host PID and its report."""

    def __init__(self, docker, cid, report):
        self.docker, self.id, self.report = docker, cid, report
        self.pid = int(docker("inspect", "--format", "{{.State.Pid}}", cid).stdout)

    def logs(self) -> str:
        return self.docker("logs", self.id, check=False).stdout


@pytest.fixture
def container(docker, image):
    """Returns a function starting a container with the docker run options given, running
    Python code that prints one JSON line; waits for it and returns a Container. Every
    container is removed at the end of the test."""
    started = []

    def start(options, code, wait_for_line=True, timeout_s=300):
        done = docker("run", "-d", "--network", "none", "--label", LABEL, *_mounts(),
                      "-e", "PYTHONDONTWRITEBYTECODE=1", "-e", "PYTHONPATH=" + _installed(),
                      "-w", "/", *options, image,
                      sys.executable, "-c", code)
        cid = done.stdout.strip()
        started.append(cid)
        report = None
        if wait_for_line:
            deadline = time.monotonic() + timeout_s
            while report is None:
                logs = docker("logs", cid, check=False)
                lines = logs.stdout.splitlines()
                if lines:
                    report = json.loads(lines[0])
                    break
                state = docker("inspect", "--format", "{{.State.Running}}", cid).stdout
                if state.strip() != "true" or time.monotonic() > deadline:
                    raise AssertionError(f"the container printed nothing: {logs.stderr[-2000:]}")
                time.sleep(0.1)
        return Container(docker, cid, report)

    yield start
    if started:
        docker("rm", "-f", *started, check=False)
