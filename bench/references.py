"""The references every figure is put beside, measured in the same run (see the baseline's
README): raw PostgreSQL recording an order (pgbench, the baseline's two statements), bare
Django + DRF + Celery enqueue under wrk, and a bare Celery worker draining no-op tasks.

    .venv/bin/python -m bench.references [--out result.json]
"""

import argparse
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from celery import Celery

from .common import PG_SERVER, PYTHON, REDIS_URL, SCALE, baseline_dir, result_write, say
from .procs import Proc, free_port, redis_client, redis_reset
from .wrk import wrk_run

DB = "tierflow_bench_baseline"
SCHEMA = """
create table members (id bigserial primary key, code text unique not null,
  total_spend numeric(14,2) not null default 0, order_count int not null default 0,
  tier int not null default 0);
create table orders (id bigserial primary key, external_id text unique not null,
  member_id bigint not null references members(id), amount numeric(14,2) not null,
  created_at timestamptz not null default now());
insert into members(code) select 'M'||g from generate_series(1,100000) g;
"""
# The baseline's own settings (its run.sh).
PGBENCH_ARGS = ["pgbench", "-n", "-c", "4", "-j", "2", "-T"]
GUNICORN_ARGS = ["baseline:application", "--log-level", "warning"]
CELERY_ARGS = ["-c", "2", "--pool", "prefork", "--loglevel", "WARNING"]
PGBENCH = """\\set mid random(1, 100000)
\\set amt random(1, 500)
BEGIN;
INSERT INTO orders(external_id, member_id, amount) VALUES (gen_random_uuid()::text, :mid, :amt);
UPDATE members SET total_spend = total_spend + :amt, order_count = order_count + 1 WHERE id = :mid;
END;
"""


def _psql(database: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{PG_SERVER}/{database}"],
        input=sql,
        text=True,
        check=True,
        capture_output=True,
    )


def database_fresh() -> None:
    """The baseline's schema and 100,000 members, in a database of the benchmark's own."""
    _psql("postgres", f"drop database if exists {DB} with (force)")
    _psql("postgres", f"create database {DB}")
    _psql(DB, SCHEMA)


def pgbench() -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(PGBENCH)
        script.flush()
        done = subprocess.run(
            [*PGBENCH_ARGS, str(SCALE.wrk_seconds), "-f", script.name, f"{PG_SERVER}/{DB}"],
            capture_output=True,
            text=True,
            check=True,
        )
    for line in done.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(f"pgbench printed no tps:\n{done.stdout}")


def _baseline_env() -> dict[str, str]:
    """The baseline reads its own variables; a CELERY_BROKER_URL would override its broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_"))}
    server = urlsplit(PG_SERVER)
    env.update(
        BASELINE_DB=DB,
        PGHOST=server.hostname or "127.0.0.1",
        PGUSER=server.username or "postgres",
        BASELINE_BROKER=REDIS_URL,
    )
    return env


def bare_drf() -> dict:
    """The bare view under gunicorn -w 2 and wrk -t2 -c8, the baseline's own settings."""
    where = baseline_dir()
    port = free_port()
    web = Proc(
        "baseline-web",
        [PYTHON, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", *GUNICORN_ARGS],
        _baseline_env(),
        cwd=where,
    )
    try:
        _wait_port(port, web)
        result = wrk_run(
            f"http://127.0.0.1:{port}/orders",
            where / "post.lua",
            SCALE.wrk_seconds,
            _baseline_env(),
        )
        result["rss"] = web.peak_rss()
    finally:
        web.stop()
    return result


def _wait_port(port: int, proc: Proc) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not listen within 30 s")


def bare_celery(count: int) -> float:
    """No-op tasks per second drained by a prefork worker of concurrency 2: `count` tasks
    published first, timed from the first taken to the last done."""
    redis_reset()
    app = Celery(broker=REDIS_URL, set_as_current=False)
    with app.producer_or_acquire() as producer:
        for n in range(count):
            app.send_task("baseline.evaluate", args=[n], producer=producer)
    app.close()
    client = redis_client()
    worker = Proc(
        "baseline-celery",
        [PYTHON, "-m", "celery", "-A", "baseline", "worker", *CELERY_ARGS],
        _baseline_env(),
        cwd=baseline_dir(),
    )
    try:
        started = finished = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and worker.alive():
            waiting = client.llen("celery")
            now = time.monotonic()
            if started is None and waiting < count:
                started = now
            if started is not None and waiting == 0 and not client.hlen("unacked"):
                finished = now
                break
            time.sleep(0.005)
        if finished is None:
            raise RuntimeError(f"the bare worker did not drain:\n{worker.log_tail()}")
    finally:
        worker.stop()
        redis_reset()
    return count / (finished - started)


def references() -> dict:
    say("References: raw PostgreSQL (pgbench)…")
    database_fresh()
    result = {"pgbench_tps": pgbench()}
    say(f"  {result['pgbench_tps']:,.0f} tx/s. Bare Django + DRF + Celery enqueue (wrk)…")
    result["bare_drf"] = bare_drf()
    say(f"  {result['bare_drf']['rate']:,.0f} req/s. Bare Celery worker, no-op tasks…")
    result["bare_celery_rate"] = bare_celery(SCALE.noop_tasks)
    say(f"  {result['bare_celery_rate']:,.0f} tasks/s.")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out")
    args = parser.parse_args()
    if not Path(baseline_dir(), "baseline.py").exists():
        raise SystemExit(f"No baseline.py in {baseline_dir()}: set BASELINE_DIR.")
    result_write(args.out, references())


if __name__ == "__main__":
    main()
