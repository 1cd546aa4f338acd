"""The processes a measurement runs (gunicorn, Celery workers), their peak memory, and the
Redis database they share."""

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import redis

from .common import REDIS_URL, ROOT, VENV_BIN

LOG_DIR = Path(os.environ.get("BENCH_LOG_DIR") or tempfile.mkdtemp(prefix="tierflow-bench-"))


class Proc:
    """A process we started, in a session of its own so that its children (gunicorn's
    workers, Celery's pool) can be stopped with it, and nothing else."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], cwd: Path = ROOT):
        self.name = name
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            list(args),
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> list[int]:
        return descendants(self.pid)

    def peak_rss(self) -> dict[str, float]:
        """Peak resident memory (VmHWM, MB) of the main process and of its largest child."""
        children = [peak_rss_mb(pid) for pid in self.children()]
        return {"main": peak_rss_mb(self.pid), "child": max(children, default=0.0)}

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (gunicorn and Celery shut down gracefully), then SIGKILL to its group."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # a child its main process left behind
        self._log.close()

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has had over its life, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_start(env: dict[str, str], workers: int = 2) -> tuple[Proc, str]:
    """gunicorn with `workers` sync workers, as in production; returns it and its URL once
    it answers."""
    port = free_port()
    proc = Proc(
        "web",
        [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"gunicorn exited:\n{proc.log_tail()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"gunicorn did not answer within 60 s:\n{proc.log_tail()}")


def worker_start(queue: str, concurrency: int, env: dict[str, str]) -> Proc:
    """A prefork Celery worker of the project on one queue, ready to take tasks."""
    name = f"{queue}-bench@{socket.gethostname()}"
    proc = Proc(
        f"celery-{queue}",
        [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--queues",
            queue,
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "-n",
            name,
            "--loglevel",
            "WARNING",
        ],
        env,
    )
    worker_wait_ready(proc, name)
    return proc


def worker_wait_ready(proc: Proc, name: str, timeout: float = 60.0) -> None:
    """Until the worker answers a ping: it consumes from its queue from then on."""
    from celery import Celery

    # Not the current app: shared tasks published from this process would follow it.
    app = Celery(broker=REDIS_URL, set_as_current=False)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
            if app.control.ping(destination=[name], timeout=0.5):
                return
        raise RuntimeError(f"{proc.name} did not answer within {timeout:.0f} s")
    finally:
        app.close()


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def redis_reset() -> None:
    """Empty the benchmark's Redis database of tasks and markers, keeping kombu's queue
    bindings (a publisher that declared its queue does not declare it again). Only while
    no worker runs."""
    client = redis_client()
    for key in client.scan_iter(count=1000):
        if not key.startswith(b"_kombu.binding"):
            client.delete(key)


def stop_all(procs: Sequence[Proc | None]) -> None:
    for proc in procs:
        if proc is not None:
            proc.stop()
