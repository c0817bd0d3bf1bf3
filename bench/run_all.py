#!/usr/bin/env python3
"""Run every benchmark and print one table (metric, value, target, met?).  `make bench` runs this.

    .venv/bin/python bench/run_all.py                 # everything (about 8 minutes on the 2-core machine once the bench databases exist)
    .venv/bin/python bench/run_all.py --quick         # a smoke run with small counts (about 3 minutes)
    .venv/bin/python bench/run_all.py --only ingest,live --json

Parts (for --only / --skip): reference (pgbench single-row INSERTs), ingest (Twilio SMS, e-mail and API
webhooks at --rate, then as fast as possible), live (websocket push latency under the SMS load), workspace
(bench/workspace_pages.py at 100k and 1M conversations), reports (bench/analytics_reports.py, when present),
routing (bench/routing_throughput.py), sla (bench/sla_timer_lateness.py).

Databases: omnidesk_bench_100k (tenant load100k) is generated when missing (generate_load_data, minutes) and
reused after; omnidesk_bench_1m (tenant bench1m) is used when it exists and is complete, never created or
dropped here. Ingest runs against omnidesk_bench_ingest, recreated each run from a migrated empty template
(omnidesk_bench_template) and seeded with seed_demo. The web server (scripts/serve.py, uvicorn) and a Celery
worker are started for the ingest and live parts, with production settings (DEBUG off) and a Redis database of
their own (12), and are stopped when the part ends, however it ends (Ctrl-C included).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgres://postgres@127.0.0.1:5432/{}"
DB_100K, TENANT_100K = "omnidesk_bench_100k", "load100k"
DB_1M, TENANT_1M = "omnidesk_bench_1m", "bench1m"
DB_INGEST, DB_TEMPLATE = "omnidesk_bench_ingest", "omnidesk_bench_template"
# A Redis database no dev server (0) or test run (14) uses: broker, channel layer and cache of the bench server.
BENCH_REDIS = "redis://127.0.0.1:6379/12"
PARTS = ("reference", "ingest", "live", "workspace", "reports", "routing", "sla")
LOG_DIR = ROOT / "var" / "bench"


@dataclass
class Row:
    metric: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target, or not measured


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- Postgres


def sql(database: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(PG_URL.format(database), autocommit=True) as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def database_exists(name: str) -> bool:
    return bool(sql("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


def conversation_count(database: str, tenant: str) -> int:
    rows = sql(database, "SELECT count(*) FROM conversations_conversation c JOIN customers_tenant t ON t.id = c.tenant_id "
                         "WHERE t.slug = %s", (tenant,))
    return rows[0][0]


def generator_running(tenant: str) -> bool:
    """Is a generate_load_data for this tenant running on this machine (the 1M one takes ~40 minutes)?"""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            words = cmdline.read_bytes().split(b"\0")
            if b"generate_load_data" in words and tenant.encode() in words:
                return True
    return False


# ---------------------------------------------------------------- processes


class Processes:
    """Child processes started in their own sessions; stop() ends each group (uvicorn and Celery fork)."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process below
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.children.append((name, process))
        return process

    def stop(self) -> None:
        for _name, process in reversed(self.children):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for name, process in reversed(self.children):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in 20 s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.children.clear()


def check(command: list[str], done: subprocess.CompletedProcess) -> None:
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()] or ["(no output)"]
        # The last line (the exception) first: it is what the table row shows.
        raise RuntimeError(f"{Path(command[1]).name} failed ({done.returncode}): {lines[-1]}\n" + "\n".join(lines[-15:]))


def run_json(command: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run a bench script that prints one JSON object as its last line."""
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    check(command, done)
    try:
        return json.loads(done.stdout)  # the whole output (analytics_reports.py indents its object)
    except json.JSONDecodeError:
        return json.loads(done.stdout.strip().splitlines()[-1])


def run_text(command: list[str], env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    check(command, done)
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- environments


def dev_env(database: str) -> dict[str, str]:
    """What workspace_pages.py and routing_throughput.py document: the dev settings against one database."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.update(DATABASE_URL=PG_URL.format(database), DEBUG="1", REDIS_URL=BENCH_REDIS,
               CHANNEL_LAYER_PREFIX="omnidesk-bench", LOG_LEVEL="WARNING")
    return env


def server_env(port: int) -> dict[str, str]:
    """Production settings (DEBUG off) for the bench server, its worker and the scripts that share its database."""
    from cryptography.fernet import Fernet

    env = dev_env(DB_INGEST)
    env.update(
        DEBUG="0", SECRET_KEY="bench-" + secrets.token_urlsafe(40), FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1,localhost", PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0", DJANGO_SETTINGS_MODULE="omnidesk.settings",
    )
    return env


def prepare_ingest_database(env: dict[str, str]) -> dict:
    """A fresh database for ingest: copy the migrated template (migrating it first if missing), migrate, seed."""
    manage = [PYTHON, "manage.py"]
    if not database_exists(DB_TEMPLATE):
        say(f"creating {DB_TEMPLATE} (migrate; once)")
        sql("postgres", f'CREATE DATABASE "{DB_TEMPLATE}"')
        try:
            run_text([*manage, "migrate", "-v0"], {**env, "DATABASE_URL": PG_URL.format(DB_TEMPLATE)}, 900)
        except Exception:
            sql("postgres", f'DROP DATABASE IF EXISTS "{DB_TEMPLATE}"')
            raise
    sql("postgres", f'DROP DATABASE IF EXISTS "{DB_INGEST}" WITH (FORCE)')
    sql("postgres", f'CREATE DATABASE "{DB_INGEST}" TEMPLATE "{DB_TEMPLATE}"')
    ingest_env = {**env, "DATABASE_URL": PG_URL.format(DB_INGEST)}
    run_text([*manage, "migrate", "-v0"], ingest_env, 900)  # migrations added since the template was made
    return run_json([*manage, "seed_demo", "--json"], ingest_env, 300)


def ensure_100k(quick: bool) -> str | None:
    """The 100k database's name, generating it when missing (about 4 minutes); None when it cannot be had."""
    if database_exists(DB_100K) and conversation_count(DB_100K, TENANT_100K) >= 100_000:
        migrate(DB_100K)
        return DB_100K
    if generator_running(TENANT_100K):
        say(f"{DB_100K} is being generated by another process; skipping it")
        return None
    if quick:
        say(f"{DB_100K} is missing; --quick does not generate it (run without --quick once)")
        return None
    say(f"generating {DB_100K} (100,000 conversations, about 4 minutes)")
    sql("postgres", f'DROP DATABASE IF EXISTS "{DB_100K}" WITH (FORCE)')
    sql("postgres", f'CREATE DATABASE "{DB_100K}"')
    env = dev_env(DB_100K)
    run_text([PYTHON, "manage.py", "migrate", "-v0"], env, 1800)
    run_text([PYTHON, "manage.py", "generate_load_data", "--tenant", TENANT_100K, "--conversations", "100000",
              "--entries", "10"], env, 3600)
    return DB_100K


def migrate(database: str) -> None:
    """Migrations added since a reused database was made (nothing to do, usually: a second)."""
    run_text([PYTHON, "manage.py", "migrate", "-v0"], dev_env(database), 3600)


def state_of_1m() -> tuple[str | None, str]:
    if not database_exists(DB_1M):
        return None, f"no {DB_1M} database (bench/README.md says how to make it)"
    if generator_running(TENANT_1M):
        return None, f"{DB_1M} is still being generated"
    try:
        count = conversation_count(DB_1M, TENANT_1M)
    except psycopg.Error as exc:
        return None, f"{DB_1M} is not usable: {exc}".splitlines()[0]
    if count < 1_000_000:
        return None, f"{DB_1M} has {count:,} conversations of tenant {TENANT_1M}, not 1,000,000 (incomplete)"
    migrate(DB_1M)
    return DB_1M, f"{count:,} conversations"


# ---------------------------------------------------------------- parts


def reference_part(args: argparse.Namespace, results: dict, rows: list[Row]) -> None:
    """pgbench: single-row INSERTs into a scratch table with the server's number of database clients."""
    if not database_exists(DB_INGEST):
        prepare_ingest_database(server_env(free_port()))
    pgbench = next((p for p in ("/usr/bin/pgbench", "/usr/lib/postgresql/15/bin/pgbench") if Path(p).exists()), None)
    if pgbench is None:
        rows.append(Row("raw Postgres INSERT rate (pgbench)", "pgbench not installed (apt-get install postgresql-client)"))
        return
    clients = args.pgbench_clients or args.web_workers + args.worker_concurrency
    sql(DB_INGEST, "DROP TABLE IF EXISTS bench_raw_insert")
    # Shaped like a receipt row: a bigint key, a tenant id, a text body and a timestamp.
    sql(DB_INGEST, "CREATE TABLE bench_raw_insert (id bigserial PRIMARY KEY, tenant_id integer NOT NULL, "
                   "body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
    script = LOG_DIR / "pgbench_insert.sql"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    script.write_text("INSERT INTO bench_raw_insert (tenant_id, body) VALUES (1, 'bench raw insert');\n")
    try:
        say(f"pgbench: {clients} clients, {args.pgbench_seconds} s (load {load_average()})")
        output = subprocess.run(
            [pgbench, "-n", "-h", "127.0.0.1", "-U", "postgres", "-f", str(script), "-c", str(clients),
             "-j", str(min(clients, 2)), "-T", str(args.pgbench_seconds), DB_INGEST],
            capture_output=True, text=True, timeout=args.pgbench_seconds + 60, check=True,
        ).stdout
    finally:
        sql(DB_INGEST, "DROP TABLE IF EXISTS bench_raw_insert")
    tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    synchronous_commit = sql(DB_INGEST, "SHOW synchronous_commit")[0][0]
    results["reference"] = {"inserts_per_second": tps, "clients": clients, "seconds": args.pgbench_seconds,
                            "latency_average_ms": float(latency.group(1)) if latency else None,
                            "synchronous_commit": synchronous_commit}
    rows.append(Row(f"raw Postgres INSERT rate (pgbench, {clients} clients, {args.pgbench_seconds} s)", f"{tps:,.0f}/s"))


@contextlib.contextmanager
def bench_server(args: argparse.Namespace, processes: Processes) -> Iterator[tuple[dict, str, dict]]:
    """A fresh ingest database, scripts/serve.py and a Celery worker; yields (env, base URL, seed_demo output)."""
    port = args.port or free_port()
    env = server_env(port)
    say("preparing a fresh ingest database")
    seeded = prepare_ingest_database(env)
    url = f"http://127.0.0.1:{port}"
    try:
        processes.start("server", [PYTHON, "scripts/serve.py", "--workers", str(args.web_workers), "--port", str(port)], env)
        # --worker-nice 10 is how the earlier published figures were taken (web before worker on a quiet machine);
        # on a machine shared with other work a niced worker gets only what the others leave (see bench/README.md).
        processes.start("worker", ["nice", "-n", str(args.worker_nice), str(Path(PYTHON).with_name("celery")), "-A", "omnidesk.celery:app",
                                   "worker", "--concurrency", str(args.worker_concurrency), "--loglevel", "WARNING",
                                   "--without-heartbeat", "--without-gossip", "--without-mingle"], env)
        wait_for_http(f"{url}/healthz", processes, 60)
        sms = inbox_of(seeded, "sms")
        warm_up(args, url, sms, processes)
        yield env, url, seeded
    finally:
        processes.stop()


def wait_for_http(url: str, processes: Processes, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, process in processes.children:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {LOG_DIR / (name + '.log')}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server did not answer {url} in {seconds} s")


def inbox_of(seeded: dict, channel: str) -> dict:
    return next(inbox for inbox in seeded["inboxes"] if inbox["channel"] == channel)


def warm_up(args: argparse.Namespace, url: str, sms: dict, processes: Processes) -> None:
    """One SMS through webhook and worker, so the first measured request finds both running."""
    result = run_json([PYTHON, str(BENCH / "twilio_ingest.py"), "--url", url, "--inbox-key", sms["key"],
                       "--auth-token", sms["twilio_auth_token"], "--to", sms["address"] or "+15005550006",
                       "--count", "20", "--concurrency", "2", "--rate", "0", "--json"], os.environ.copy(), 120)
    if result["errors"]:
        raise RuntimeError(f"warm-up webhooks failed: {result['error_kinds']}")
    drained = drain(result["run_id"], 20, 90)
    if drained is None:
        raise RuntimeError(f"the Celery worker stored nothing in 90 s; see {LOG_DIR / 'worker.log'}")


def stored(run_id: str) -> tuple[int, int]:
    """Timeline messages of one load run, and how many distinct provider ids they have."""
    return sql(DB_INGEST, "SELECT count(*), count(DISTINCT external_id) FROM conversations_timelineentry "
                          "WHERE body LIKE %s", (f"bench {run_id} #%",))[0]


def drain(run_id: str, expected: int, seconds: float) -> float | None:
    """Seconds until no receipt is pending and the run's messages are all stored; None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        pending = sql(DB_INGEST, "SELECT count(*) FROM channels_app_inboundreceipt WHERE processed_at IS NULL")[0][0]
        if pending == 0 and stored(run_id)[0] >= expected:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def load_command(channel: str, url: str, seeded: dict, count: int, rate: float, concurrency: int,
                 new_customers: bool = False) -> list[str]:
    if channel == "sms":
        inbox = inbox_of(seeded, "sms")
        return [PYTHON, str(BENCH / "twilio_ingest.py"), "--url", url, "--inbox-key", inbox["key"],
                "--auth-token", inbox["twilio_auth_token"], "--to", inbox["address"] or "+15005550006",
                "--count", str(count), "--concurrency", str(concurrency), "--rate", str(rate), "--json",
                *(["--senders", str(count)] if new_customers else [])]
    inbox = inbox_of(seeded, channel)
    return [PYTHON, str(BENCH / "channel_ingest.py"), "--channel", channel, "--url", url, "--inbox-key", inbox["key"],
            "--secret", inbox["secret"], "--to", inbox["address"] or "support@bench.example", "--count", str(count),
            "--concurrency", str(concurrency), "--rate", str(rate), "--json"]


CHANNEL_NAMES = {"sms": "Twilio SMS", "email": "e-mail", "api": "API channel"}


def autovacuum_on() -> bool:
    return sql("postgres", "SHOW autovacuum")[0][0] == "on"


def ingest_run(args: argparse.Namespace, channel: str, url: str, seeded: dict, env: dict, *, count: int, rate: float,
               live: bool, new_customers: bool = False) -> dict:
    if not autovacuum_on():
        # Without autovacuum the planner keeps the estimates of the empty template while every run adds
        # thousands of rows, and picks plans that scan what has grown; production keeps statistics fresh.
        sql(DB_INGEST, "ANALYZE")
    load_before = load_average()
    command = load_command(channel, url, seeded, count, rate, args.concurrency, new_customers)
    live_result = None
    if live:
        sms = inbox_of(seeded, "sms")
        probe = subprocess.Popen(
            [PYTHON, str(BENCH / "live_latency.py"), "--url", url, "--tenant", seeded["tenant"], "--inbox-key", sms["key"],
             "--auth-token", sms["twilio_auth_token"], "--to", sms["address"] or "+15005550006",
             "--probes", str(args.probes), "--interval", str(args.probe_interval), "--timeout", "120", "--json"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    try:
        result = run_json(command, os.environ.copy(), count / max(rate, 1) + 600)
    except BaseException:
        if live:
            probe.kill()
            probe.wait()
        raise
    # Timed from the last answer, while the probes (if any) still wait for their pushes.
    drained = drain(result["run_id"], result["sent"] - result["errors"], 300)
    if live:
        out, err = probe.communicate(timeout=300)
        if probe.returncode != 0:
            raise RuntimeError(f"live_latency.py failed: {err.strip()[-800:]}")
        live_result = json.loads(out.strip().splitlines()[-1])
    total, distinct = stored(result["run_id"])
    result.update(channel=channel, new_customers=new_customers, target_rate=rate or None, stored=total,
                  stored_distinct=distinct,
                  drained_seconds=round(drained, 1) if drained is not None else None,
                  load_average=f"{load_before} -> {load_average()}")
    elapsed = result["seconds"] + (drained or 0)
    result["stored_per_second"] = round(total / elapsed, 1) if elapsed else None
    if live_result is not None:
        result["live"] = live_result
    say(f"{channel}{' (new customers)' if new_customers else ''} at {rate or 'max'}/s: {result['requests_per_second']} req/s, p95 {result['p95_ms']} ms, "
        f"{result['errors']} errors, stored {total}/{result['sent']}, drained {result['drained_seconds']} s")
    return result


def ingest_rows(runs: list[dict], reference: dict | None, rows: list[Row]) -> None:
    for run in runs:
        name = CHANNEL_NAMES[run["channel"]] + (", each message from a new customer" if run.get("new_customers") else "")
        final, distinct = run.get("stored_final", run["stored"]), run.get("stored_distinct_final", run["stored_distinct"])
        lossless = run["errors"] == 0 and final == run["sent"] == distinct
        if run["target_rate"]:
            rate = run["target_rate"]
            rows.append(Row(
                f"ingest {name} at {rate:g}/s: achieved, p50 / p95 / p99",
                f"{run['requests_per_second']} req/s, {run['p50_ms']} / {run['p95_ms']} / {run['p99_ms']} ms",
                "p95 < 50 ms at 100/s", run["p95_ms"] < 50 and run["requests_per_second"] >= 0.95 * rate,
            ))
        else:
            rows.append(Row(f"ingest {name} as fast as possible: achieved, p50 / p95",
                            f"{run['requests_per_second']} req/s, {run['p50_ms']} / {run['p95_ms']} ms"))
        rows.append(Row(
            f"  errors, stored / sent ({'at ' + format(run['target_rate'], 'g') + '/s' if run['target_rate'] else 'max'})",
            f"{run['errors']} errors, {final} / {run['sent']} stored ({distinct} distinct), " + (
                f"drained {run['drained_seconds']} s after the run" if run["drained_seconds"] is not None else
                f"{run['stored']} of them within 300 s of the run, the rest by the final count"
            ), "0 errors, stored = sent", lossless,
        ))
        if not run["target_rate"] and reference:
            share = 100 * run["stored_per_second"] / reference["inserts_per_second"]
            acknowledged = 100 * run["requests_per_second"] / reference["inserts_per_second"]
            rows.append(Row(f"  {name} stored/s at max rate vs raw INSERT rate",
                            f"{run['stored_per_second']}/s = {share:.1f}% of {reference['inserts_per_second']:,.0f}/s "
                            f"(answered: {acknowledged:.1f}%)", "stored >= 25%", share >= 25))
        if "live" in run:
            live = run["live"]
            rows.append(Row(
                f"live latency webhook -> websocket ({live['probes']} probes under {name} at {run['target_rate']:g}/s)",
                f"p50 {live['p50_ms']} / p95 {live['p95_ms']} / p99 {live['p99_ms']} ms; "
                f"{live['pushed']}/{live['probes']} pushed",
                "p95 < 250 ms, all pushed", live["p95_ms"] < 250 and live["pushed"] == live["probes"],
            ))


def ingest_part(args: argparse.Namespace, parts: set[str], results: dict, rows: list[Row], processes: Processes) -> None:
    channels = ["sms", "email", "api"] if "ingest" in parts else ["sms"]
    runs = []
    with bench_server(args, processes) as (env, url, seeded):
        results["server"] = {"web_workers": args.web_workers, "worker_concurrency": args.worker_concurrency,
                             "worker_nice": args.worker_nice,
                             "database_pool_max": int(env.get("DATABASE_POOL_MAX", "8")), "conn_max_age": 0,
                             # Off: each run ANALYZEs the ingest database first (ingest_run).
                             "autovacuum": autovacuum_on()}
        for channel in channels:
            runs.append(ingest_run(args, channel, url, seeded, env, count=args.count, rate=args.rate,
                                   live="live" in parts and channel == "sms"))
        if "live" in parts and args.live_rate and args.live_rate != args.rate:
            # Latency where the pipeline keeps up: at --rate the 2-core machine may not (the worker's backlog
            # then sits in front of every probe); thirty seconds of SMS at --live-rate, probed the same way.
            runs.append(ingest_run(args, "sms", url, seeded, env, count=int(args.live_rate * 30), rate=args.live_rate,
                                   live=True))
        if "ingest" in parts:
            # The eight regulars above find their customer and open conversation; here every message creates a
            # customer, an identity and a conversation, and is routed: the worker's heaviest path.
            runs.append(ingest_run(args, "sms", url, seeded, env, count=args.count, rate=args.rate,
                                   live="live" in parts, new_customers=True))
        if "ingest" in parts:
            for channel in channels:
                runs.append(ingest_run(args, channel, url, seeded, env, count=args.max_count, rate=0, live=False))
        # A run whose backlog outlasted its drain window is not a loss until the worker has finished: count again.
        if any(run["drained_seconds"] is None for run in runs):
            say("waiting for the worker to store the rest before the final count")
            started = time.monotonic()
            while time.monotonic() - started < 900 and sql(
                DB_INGEST, "SELECT count(*) FROM channels_app_inboundreceipt WHERE processed_at IS NULL"
            )[0][0]:
                time.sleep(1)
        for run in runs:
            run["stored_final"], run["stored_distinct_final"] = stored(run["run_id"])
    results["ingest"] = runs
    ingest_rows(runs, results.get("reference"), rows)


PAGE_LINE = re.compile(r"^(?P<label>.+?)\s+(?P<p50>\d+(?: / \d+)*)\s+(?P<p95>\d+(?: / \d+)*)\s+(?P<cpu>\d+(?: / \d+)*)\s+(?P<sql>\d+)$")


def workspace_part(args: argparse.Namespace, results: dict, rows: list[Row]) -> None:
    targets = []
    database = ensure_100k(args.quick)
    if database:
        targets.append(("100k", database, TENANT_100K))
    else:
        rows.append(Row("workspace pages at 100k", f"not measured: no complete {DB_100K}"))
    database_1m, state = state_of_1m()
    if database_1m:
        targets.append(("1M", database_1m, TENANT_1M))
    else:
        rows.append(Row("workspace pages at 1M", f"not measured: {state}"))
    results["workspace"] = {}
    for size, database, tenant in targets:
        say(f"workspace pages at {size} (load {load_average()})")
        output = run_text([PYTHON, str(BENCH / "workspace_pages.py"), "--tenant", tenant, "--repeat", str(args.page_repeat),
                           "--rounds", str(args.page_rounds)], dev_env(database), 3600)
        pages = {}
        for line in output.splitlines():
            match = PAGE_LINE.match(line.strip())
            if match and not line.startswith(("round", "after", "tenant")):
                p50s = [float(v) for v in match["p50"].split(" / ")]
                p95s = [float(v) for v in match["p95"].split(" / ")]
                cpus = [float(v) for v in match["cpu"].split(" / ")]
                pages[match["label"]] = {"p50_ms": statistics.median(p50s), "p95_ms": statistics.median(p95s),
                                         "cpu_p50_ms": statistics.median(cpus), "p50_rounds": p50s, "p95_rounds": p95s,
                                         "sql": int(match["sql"])}
        if not pages:
            raise RuntimeError(f"could not read workspace_pages.py's table:\n{output[-1500:]}")
        results["workspace"][size] = {"pages": pages, "summary": output.splitlines()[0]}
        for label, page in pages.items():
            limit = 150 if label.startswith("conversation") else 100
            # The process's own CPU per request beside the wall clock: on a shared machine the gap is waiting.
            rows.append(Row(f"workspace {size}: {label}", f"p50 {page['p50_ms']:.0f} / p95 {page['p95_ms']:.0f} ms "
                            f"(CPU {page['cpu_p50_ms']:.0f} ms), {page['sql']} SQL", f"p50 < {limit} ms",
                            page["p50_ms"] < limit))


def reports_part(args: argparse.Namespace, results: dict, rows: list[Row]) -> None:
    script = BENCH / "analytics_reports.py"
    if not script.exists():
        rows.append(Row("reports and live overview pages", "not measured: bench/analytics_reports.py does not exist yet"))
        return
    targets = []
    database = ensure_100k(args.quick)
    if database:
        targets.append(("100k", database, TENANT_100K))
    database_1m, state = state_of_1m()
    if database_1m:
        targets.append(("1M", database_1m, TENANT_1M))
    else:
        rows.append(Row("reports pages at 1M", f"not measured: {state}"))
    if not targets:
        return
    help_text = run_text([PYTHON, str(script), "--help"], dev_env(targets[0][1]), 120)
    results["reports"] = {}
    for size, database, tenant in targets:
        say(f"reports pages at {size} (load {load_average()})")
        command = [PYTHON, str(script), "--tenant", tenant]
        command += ["--quick"] if args.quick and "--quick" in help_text else []
        if "--json" not in help_text:
            # No machine-readable output: its last line goes in the table as it is.
            output = run_text(command, dev_env(database), 3600)
            results["reports"][size] = output
            rows.append(Row(f"reports {size} (bench/analytics_reports.py)", output.strip().splitlines()[-1][:160]))
            continue
        result = run_json([*command, "--json"], dev_env(database), 3600)
        results["reports"][size] = result
        for label, page in report_pages(result):
            p50, p95 = page.get("p50_ms"), page.get("p95_ms")
            value = f"p50 {p50:.0f} / p95 {p95:.0f} ms" if p50 is not None and p95 is not None else json.dumps(page)[:160]
            if page.get("cpu_p50_ms") is not None:
                value += f" (CPU {page['cpu_p50_ms']:.0f} ms)"
            if page.get("sql") is not None:
                value += f", {page['sql']} SQL"
            rows.append(Row(f"reports {size}: {label}", value, str(page.get("target", "")), page.get("met")))


def report_pages(result) -> list[tuple[str, dict]]:
    """analytics_reports.py's pages, from {"pages": [{"label", ...}]}, [{"label", ...}] or {label: {...}}."""
    pages = result.get("pages", result) if isinstance(result, dict) else result
    if isinstance(pages, dict):
        return [(label, page) for label, page in pages.items() if isinstance(page, dict)]
    return [(str(page.get("label") or page.get("page") or page.get("name")), page) for page in pages if isinstance(page, dict)]


def routing_part(args: argparse.Namespace, results: dict, rows: list[Row]) -> None:
    if not database_exists(DB_INGEST):
        prepare_ingest_database(server_env(free_port()))
    size = ["--conversations", "200", "--agents", "10"] if args.quick else []
    say(f"routing throughput (load {load_average()})")
    output = run_text([PYTHON, str(BENCH / "routing_throughput.py"), "--processes", "2", *size], dev_env(DB_INGEST), 900)
    rate = int(re.search(r"(\d+) assignments/s", output).group(1))
    p95 = float(re.search(r"p95 ([\d.]+)", output).group(1))
    violations, twice = (int(v) for v in re.search(r"capacity violations: (\d+); conversations assigned twice: (\d+)", output).groups())
    burst = re.search(r"^(\d+) conversations, (\d+) agents", output, re.MULTILINE).groups()
    results["routing"] = {"assignments_per_second": rate, "batch_p95_ms": p95, "capacity_violations": violations,
                          "assigned_twice": twice, "conversations": int(burst[0]), "agents": int(burst[1])}
    rows.append(Row(f"routing: burst of {burst[0]} to {burst[1]} agents, 2 processes", f"{rate} assignments/s "
                    f"(batch p95 {p95:.0f} ms), {violations} over capacity, {twice} assigned twice",
                    ">= 200/s, 0 violations", rate >= 200 and violations == 0 and twice == 0))


def sla_part(args: argparse.Namespace, results: dict, rows: list[Row]) -> None:
    count, first, spread = (10, 8, 2) if args.quick else (args.sla_conversations, 20, 10)
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}}
    say(f"SLA timer lateness, {count} conversations (load {load_average()})")
    output = run_text([PYTHON, str(BENCH / "sla_timer_lateness.py"), "--conversations", str(count), "--first", str(first),
                       "--spread", str(spread)], env, 900)
    fired, duplicates = (int(v) for v in re.search(r"breaches fired: (\d+) \(duplicates: (\d+)\)", output).groups())
    lateness = re.search(r"p50 (-?\d+) ms, p95 (-?\d+) ms, max (-?\d+) ms", output)
    p50, p95, worst = (int(v) for v in lateness.groups()) if lateness else (None, None, None)
    results["sla"] = {"conversations": count, "fired": fired, "duplicates": duplicates, "p50_ms": p50, "p95_ms": p95,
                      "max_ms": worst}
    rows.append(Row(f"SLA breach timers, {count} due within {spread} s, one solo worker: lateness",
                    f"p50 {p50} / p95 {p95} / max {worst} ms; {fired}/{count} fired, {duplicates} twice",
                    "p95 < 5 s, all fired once", p95 is not None and p95 < 5000 and fired == count and duplicates == 0))


# ---------------------------------------------------------------- output


def print_table(rows: list[Row]) -> None:
    headers = ("metric", "value", "target", "met?")
    cells = [(r.metric, r.value, r.target, {True: "yes", False: "NO", None: ""}[r.met]) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)] if cells else [len(h) for h in headers]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for cell in cells:
        print(" | ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help=f"comma-separated parts to run: {', '.join(PARTS)}")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run of every part")
    parser.add_argument("--json", action="store_true", help="print one JSON object (rows and raw results) instead")
    parser.add_argument("--rate", type=float, default=100.0, help="target ingest rate, requests/s (default 100)")
    parser.add_argument("--count", type=int, default=3000, help="messages per channel at the target rate")
    parser.add_argument("--max-count", type=int, default=2000, help="messages per channel in the as-fast-as-possible runs")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent senders")
    parser.add_argument("--probes", type=int, default=100, help="live-latency probe webhooks")
    parser.add_argument("--probe-interval", type=float, default=0.25, help="seconds between probes")
    parser.add_argument("--live-rate", type=float, default=50.0,
                        help="also probe live latency under SMS at this rate (default 50/s; 0 = only at --rate)")
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn processes (scripts/serve.py --workers)")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--worker-nice", type=int, default=0, help="nice value of the Celery worker (default 0)")
    parser.add_argument("--pgbench-seconds", type=int, default=20)
    parser.add_argument("--pgbench-clients", type=int, default=0,
                        help="default: web workers + Celery processes, the database clients the app keeps busy")
    parser.add_argument("--page-repeat", type=int, default=20, help="requests per page per round (workspace_pages.py)")
    parser.add_argument("--page-rounds", type=int, default=2)
    parser.add_argument("--sla-conversations", type=int, default=50)
    parser.add_argument("--port", type=int, default=0, help="bench server port (default: a free one)")
    args = parser.parse_args()
    unknown = {p for p in (args.only + "," + args.skip).split(",") if p} - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; parts are {', '.join(PARTS)}")
    if args.quick:
        args.count, args.max_count, args.probes, args.probe_interval = 300, 300, 10, 0.2
        args.live_rate = 0
        args.pgbench_seconds, args.page_repeat, args.page_rounds = 5, 3, 1
    return args


def interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    parts = set(args.only.split(",")) - {""} or set(PARTS)
    parts -= set(args.skip.split(","))
    # SIGTERM (a CI timeout, `kill`) takes the same path as Ctrl-C: the finally blocks stop the children.
    signal.signal(signal.SIGTERM, interrupted)
    processes = Processes()
    results: dict = {"machine": {"cpus": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") *
                                 os.sysconf("SC_PHYS_PAGES") / 2**30, 1), "load_before": load_average()},
                     "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": args.quick}
    rows: list[Row] = []
    failed = False
    steps = [
        ("reference", lambda: reference_part(args, results, rows)),
        ("ingest/live", lambda: ingest_part(args, parts, results, rows, processes)),
        ("workspace", lambda: workspace_part(args, results, rows)),
        ("reports", lambda: reports_part(args, results, rows)),
        ("routing", lambda: routing_part(args, results, rows)),
        ("sla", lambda: sla_part(args, results, rows)),
    ]
    try:
        for name, step in steps:
            if not parts & set(name.split("/")):
                continue
            try:
                step()
            except (RuntimeError, subprocess.SubprocessError, psycopg.Error, AttributeError, OSError, ValueError) as exc:
                # One broken part must not hide the others' figures; it is a row (and the exit status) instead.
                failed = True
                say(f"{name} failed: {exc}")
                rows.append(Row(f"{name}", f"FAILED: {str(exc).splitlines()[0][:160]}", "", False))
            finally:
                processes.stop()
    except KeyboardInterrupt:
        say("interrupted; stopped the server and worker")
        processes.stop()
        return 130
    results["machine"]["load_after"] = load_average()
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in rows], "results": results}, indent=2))
    else:
        print(f"\n{results['machine']['cpus']} CPUs, {results['machine']['memory_gib']} GiB; load average "
              f"{results['machine']['load_before']} before, {results['machine']['load_after']} after; "
              f"web: scripts/serve.py --workers {args.web_workers}, Celery --concurrency {args.worker_concurrency} "
              f"at nice {args.worker_nice}"
              f"{'; --quick (small counts)' if args.quick else ''}\n")
        print_table(rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
