"""The real parts a benchmark run starts and stops: its own PostgreSQL
database, the MMC sandbox, Celery workers and gunicorn, plus the ``/proc``
readings (CPU time, peak RSS) the scenarios take from them.

Every process here is started by the run, in its own session, and stopped by
its own process id; nothing is looked up by name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class StackError(RuntimeError):
    """A part of the stack could not be started."""


# -- /proc --------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2:].split()


def children_of(root: int) -> list[int]:
    """Every live descendant of ``root``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                parents[int(entry)] = int(fields[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(kids)
        frontier.extend(kids)
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of these processes, from their own accounting
    (including children they have already waited for)."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    return cpu_seconds([root, *children_of(root)])


def status_kb(field: str, pid: int | str = "self") -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``)."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


# -- processes ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class Process:
    """A child process in its own session, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def wait_until(self, ready: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(f"{self.name} exited while starting:\n{self.output()}")
            value = ready()
            if value:
                return value
            time.sleep(0.05)
        raise StackError(f"{self.name}: {what} not within {timeout}s:\n{self.output()}")

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to the process's own group, SIGKILL if it does not go."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        except ProcessLookupError:
            pass


# -- the database ---------------------------------------------------------------


def pg_connect(dbname: str = "postgres") -> Any:
    import psycopg

    return psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"), port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"), password=os.environ.get("PGPASSWORD", ""),
        dbname=dbname, autocommit=True, connect_timeout=5,
    )


def create_database(name: str) -> str:
    """Create ``name`` afresh; returns the server version."""
    with pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        return conn.execute("SHOW server_version").fetchone()[0]


def drop_database(name: str) -> None:
    with pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- Redis ------------------------------------------------------------------------


def redis_client(db: int) -> Any:
    import redis
    from django.conf import settings

    return redis.Redis.from_url(f"{settings.REDIS_URL}/{db}")


def redis_version() -> str:
    client = redis_client(0)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def delete_queues(*names: str) -> None:
    """Drop these Celery queues and their bindings from the broker."""
    client = redis_client(12)
    try:
        for name in names:
            client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
            for priority in range(1, 10):
                client.delete(f"{name}\x06\x16{priority}")
    finally:
        client.close()


def queue_length(name: str) -> int:
    client = redis_client(12)
    try:
        return int(client.llen(name))
    finally:
        client.close()


def clear_cache_prefix(prefix: str) -> int:
    """Delete this run's keys from the cache database (never the others')."""
    client = redis_client(11)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


# -- the MMC sandbox --------------------------------------------------------------


class SandboxProcess:
    """The MMC sandbox (:mod:`benchmarks.sandbox_server`) on a free loopback
    port, driven through its control endpoints (``/_sandbox/...``)."""

    def __init__(self, log_dir: Path, latency: float, name: str = "sandbox") -> None:
        self.port = free_port()
        self.latency = latency
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process(name, [
            sys.executable, "-m", "benchmarks.sandbox_server", str(self.port), str(latency),
        ], python_env(), log_dir)
        self.http = requests.Session()

    def start(self) -> SandboxProcess:
        self.process.start()

        def answers() -> bool:
            try:
                return self.http.get(self.url + "/", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        self.process.wait_until(answers, 20, "answering")
        return self

    def stop(self) -> None:
        self.http.close()
        self.process.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    def mmc_settings(self, **overrides: Any) -> dict[str, Any]:
        """The ``MMC`` setting for this sandbox (the same value its own
        ``Sandbox.mmc_settings()`` gives)."""
        from django_mmc.sandbox import Sandbox

        return Sandbox(port=self.port).mmc_settings(**overrides)

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", json=payload,
                                     timeout=60)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        return self.control("GET", "state")

    def requests_log(self) -> list[dict[str, Any]]:
        return self.control("GET", "requests")

    def reset(self) -> None:
        self.control("POST", "reset", {})

    def token(self) -> str:
        """One access token, fetched as any OAuth client would."""
        from django_mmc import contract
        from django_mmc.sandbox.defaults import (
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            OAUTH_PATH,
        )

        answer = self.http.post(
            contract.token_url(self.url + OAUTH_PATH, contract.DEFAULT_OAUTH_FLOW),
            data={"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
                  "client_secret": DEFAULT_CLIENT_SECRET, "scope": contract.DEFAULT_SCOPE},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()["access_token"]


# -- Celery workers ---------------------------------------------------------------


class Workers:
    """One ``celery worker`` (prefork) with ``concurrency`` pool processes,
    consuming ``queue``, on this run's database and sandbox."""

    def __init__(self, log_dir: Path, queue: str, mmc: dict[str, Any], concurrency: int = 2,
                 name: str = "worker", db_reuse_max: int | None = None) -> None:
        self.ready_file = Path(tempfile.mkstemp(prefix="mmc-bench-ready-", dir=log_dir)[1])
        self.ready_file.unlink()
        self.concurrency = concurrency
        env = python_env(
            DJANGO_SETTINGS_MODULE="benchmarks.settings",
            MMC_BENCH_MMC=json.dumps(mmc),
            MMC_BENCH_QUEUE=queue,
            MMC_BENCH_READY_FILE=str(self.ready_file),
            MMC_BENCH_DB_REUSE_MAX="" if db_reuse_max is None else str(db_reuse_max),
        )
        self.process = Process(name, [
            sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker",
            "-Q", queue, "-c", str(concurrency), "-P", "prefork", "-O", "fair",
            "--prefetch-multiplier", "1", "-l", "warning",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"{queue}-{name}@%h",
        ], env, log_dir)

    def start(self) -> Workers:
        self.process.start()
        self.process.wait_until(self.ready_file.exists, 60, "ready")
        self.process.wait_until(lambda: len(children_of(self.pid)) >= self.concurrency, 30,
                                "pool processes")
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return [self.pid, *children_of(self.pid)]

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def stop(self) -> None:
        self.process.stop()
        self.ready_file.unlink(missing_ok=True)


# -- gunicorn ---------------------------------------------------------------------


def _no_control_socket() -> list[str]:
    """gunicorn 25.1+ opens a control socket in the home directory unless told not to."""
    import gunicorn

    return ["--no-control-socket"] if gunicorn.version_info >= (25, 1) else []


class Gunicorn:
    """``gunicorn benchmarks.wsgi`` on a free loopback port."""

    def __init__(self, log_dir: Path, workers: int, threads: int, queue: str,
                 mmc: dict[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        env = python_env(
            DJANGO_SETTINGS_MODULE="benchmarks.settings",
            MMC_BENCH_MMC=json.dumps(mmc),
            MMC_BENCH_QUEUE=queue,
        )
        self.process = Process("gunicorn", [
            sys.executable, "-m", "gunicorn", "benchmarks.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "30",
            "--backlog", "512", "--log-level", "warning", *_no_control_socket(),
        ], env, log_dir)

    def start(self) -> Gunicorn:
        self.process.start()

        def answers() -> bool:
            try:
                requests.get(self.url + "/bare/", timeout=1)
            except requests.RequestException:
                return False
            return len(children_of(self.pid)) >= self.workers

        self.process.wait_until(answers, 30, "answering")
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def stop(self) -> None:
        self.process.stop()
