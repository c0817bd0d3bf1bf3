"""Fault drills: real processes (web server, Celery worker, Redis, Postgres) that the drills kill and restart.

Each drill ends by counting rows: every message stored once, routed once, delivered once. The machine's own
Redis (6379) and Postgres (5432) are shared with other test runs and are never stopped: the drills that
break a service start a private one on a free port and point the processes under test at it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from django.db import connection

from tests.channels.twilio.conftest import (
    ACCOUNT_SID,
    fake_twilio,  # noqa: F401 - the fake Twilio API, for the drills too
    sign,
)

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_database_url() -> str:
    """The database this pytest run's tests use, for the child processes."""
    s = connection.settings_dict
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def child_env(**overrides: str) -> dict[str, str]:
    """Test settings for a child process: this run's database, broker queue and channel-layer prefix."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "omnidesk.settings_test",
        "DATABASE_URL": run_database_url(),
        "OMNIDESK_TEST_RUN_ID": os.environ["OMNIDESK_TEST_RUN_ID"],
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


@dataclass
class Child:
    """A child process in its own process group, its output in a log file (read it when a drill fails)."""

    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown handler runs, prefork children die with their parent."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class CeleryWorker(Child):
    """`celery worker` as `make run` starts it (prefork, 2 processes), on this run's queue."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        name = f"drill-{uuid.uuid4().hex[:8]}@%h"
        super().__init__(
            [str(VENV_BIN / "celery"), "-A", "omnidesk.celery:app", "worker", "--loglevel", "INFO", "--pool", "prefork",
             "--concurrency", "2", "-n", name, "--without-mingle", "--without-gossip", "--without-heartbeat"],
            env, log,
        )
        self.starts = 0

        self.name = name.replace("%h", socket.gethostname())

    def start(self) -> None:
        self.starts += 1
        super().start()
        ready = wait_until(lambda: self.output().count(" ready.") >= self.starts, timeout=60)
        assert ready, f"the Celery worker did not start:\n{self.output()[-3000:]}"

    def idle(self) -> bool:
        """Nothing waits in this run's queue and the worker runs no task (asked over its broker; a worker
        that lost its control queue with a Redis restart does not answer, and then only the queue counts)."""
        from celery import Celery
        from django.conf import settings
        from redis import Redis

        broker = self.env.get("CELERY_BROKER_URL", settings.CELERY_BROKER_URL)
        with Redis.from_url(broker) as redis:
            if redis.llen(settings.CELERY_TASK_DEFAULT_QUEUE):
                return False
        control = Celery(broker=broker)
        try:
            inspect = control.control.inspect(destination=[self.name], timeout=1.0)
            active, reserved = inspect.active(), inspect.reserved()
        finally:
            control.close()
        if active is None:
            return True
        return active.get(self.name) == [] and (reserved or {}).get(self.name) == []


class WebServer(Child):
    """scripts/serve.py (uvicorn, the production server), one process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "PUBLIC_BASE_URL": self.url, "ALLOWED_HOSTS": "127.0.0.1,localhost", "WHITENOISE_USE_FINDERS": "1"}
        super().__init__([sys.executable, str(ROOT / "scripts" / "serve.py"), "--port", str(self.port), "--workers", "1"], env, log)

    def start(self) -> None:
        super().start()
        assert wait_until(lambda: port_open(self.port), timeout=30), f"the web server did not start:\n{self.output()[-3000:]}"


@pytest.fixture
def drill_log_dir(tmp_path) -> Path:
    return tmp_path


@pytest.fixture
def start_worker(drill_log_dir):
    """start_worker(**env) -> a started CeleryWorker; stopped at the end of the test."""
    workers: list[CeleryWorker] = []

    def start(**env: str) -> CeleryWorker:
        worker = CeleryWorker(child_env(**env), drill_log_dir / f"worker-{len(workers)}.log")
        workers.append(worker)
        worker.start()
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_web(drill_log_dir):
    servers: list[WebServer] = []

    def start(**env: str) -> WebServer:
        server = WebServer(child_env(**env), drill_log_dir / f"web-{len(servers)}.log")
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


# --- a private Redis -----------------------------------------------------------------------------------


class PrivateRedis(Child):
    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        super().__init__(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"], dict(os.environ), log,
        )

    def start(self) -> None:
        super().start()
        assert wait_until(lambda: port_open(self.port), timeout=10), self.output()


@pytest.fixture
def private_redis(drill_log_dir):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(drill_log_dir / "redis.log")
    redis.start()
    yield redis
    redis.kill()


# --- a private Postgres cluster --------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway cluster of Debian's Postgres 15, run as the postgres OS user (initdb refuses root)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/drill"

    def _as_postgres(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> None:
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: every session is cut at once, uncommitted work is lost."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def load_copy_of(self, database_url: str) -> None:
        """Create database `drill` as a copy (schema and rows) of this run's test database."""
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "drill"], check=True)
        dump = subprocess.Popen([str(PG_BIN / "pg_dump"), "--no-owner", "--no-acl", database_url], stdout=subprocess.PIPE)
        subprocess.run(
            [str(PG_BIN / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", "drill"], stdin=dump.stdout, check=True, stdout=subprocess.DEVNULL,
        )
        assert dump.wait() == 0

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def private_postgres():
    if not (PG_BIN / "initdb").exists():
        pytest.skip("Debian's postgresql-15 binaries are not installed")
    root = Path(tempfile.mkdtemp(prefix="omnidesk-drill-pg-"))
    root.chmod(0o777)  # the postgres OS user owns the cluster inside
    cluster = PrivatePostgres(root)
    cluster.init()
    cluster.start()
    yield cluster
    try:
        cluster.stop("immediate")
    except subprocess.CalledProcessError:
        pass  # already stopped by the drill
    shutil.rmtree(root, ignore_errors=True)


# --- senders ---------------------------------------------------------------------------------------------


def sms_form(i: int, *, run: str) -> dict[str, str]:
    """Inbound SMS number `i` of a burst: its own sender, so every message opens its own conversation."""
    return {
        "MessageSid": f"SM{uuid.uuid5(uuid.NAMESPACE_URL, f'{run}-{i}').hex}", "AccountSid": ACCOUNT_SID,
        "From": f"+1202555{i:04d}", "To": "+15550100000", "Body": f"drill {run} #{i}", "NumMedia": "0",
    }


@dataclass
class Burst:
    """Signed Twilio SMS webhooks to a real server from several threads, each retried like Twilio would
    (on a 5xx or a refused connection) until it is answered 200 or the deadline passes."""

    server_url: str
    path: str
    forms: list[dict[str, str]]
    senders: int = 4
    retry_for: float = 60.0
    answers: list[tuple[str, int]] = field(default_factory=list)  # (MessageSid, status or 0 for no answer)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _send_one(self, session: requests.Session, form: dict[str, str]) -> None:
        url = self.server_url + self.path
        headers = {"X-Twilio-Signature": sign(url, form)}
        deadline = time.monotonic() + self.retry_for
        while True:
            try:
                status = session.post(url, data=form, headers=headers, timeout=10).status_code
            except requests.ConnectionError:
                status = 0
            with self.lock:
                self.answers.append((form["MessageSid"], status))
            if status == 200 or (status not in (0, 502, 503, 504) or time.monotonic() > deadline):
                return
            time.sleep(0.3)

    def _sender(self, forms: list[dict[str, str]], pace: float) -> None:
        with requests.Session() as session:
            for form in forms:
                self._send_one(session, form)
                with self.lock:
                    self.sent += 1
                time.sleep(pace)

    def run(self, *, pace: float = 0.02, during: Callable[[Burst], None] | None = None) -> None:
        """Send everything; `during(burst)` runs in this thread meanwhile (the fault)."""
        threads = [
            threading.Thread(target=self._sender, args=(self.forms[i :: self.senders], pace), daemon=True)
            for i in range(self.senders)
        ]
        for thread in threads:
            thread.start()
        if during is not None:
            during(self)
        for thread in threads:
            thread.join(timeout=self.retry_for + 60)

    def statuses(self) -> set[int]:
        return {status for _, status in self.answers}

    def last_status_per_message(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for sid, status in self.answers:
            last[sid] = status
        return last
