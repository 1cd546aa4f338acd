"""What every part of the benchmark shares: its scale (from the environment), the databases
and Redis database it uses, the environment its processes run with, and how a part hands
its figures back to the suite (a JSON file)."""

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
VENV_BIN = ROOT / ".venv" / "bin"

# Never the test suite's: it uses the database `tierflow` and Redis databases 0-8.
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def _int(name: str, full: int, quick: int) -> int:
    return int(os.environ.get(name, quick if QUICK else full))


def _ints(name: str, full: str, quick: str) -> list[int]:
    return [int(part) for part in os.environ.get(name, quick if QUICK else full).split(",")]


@dataclass(frozen=True)
class Scale:
    """Sizes and durations; BENCH_QUICK=1 scales everything down for a smoke run."""

    quick: bool = QUICK
    members: int = _int("BENCH_MEMBERS", 100_000, 10_000)
    orders: int = _int("BENCH_ORDERS", 1_000_000, 100_000)  # already recorded
    backlog: int = _int("BENCH_BACKLOG", 20_000, 2_000)  # waiting orders per drain
    noop_tasks: int = _int("BENCH_NOOP_TASKS", 20_000, 5_000)
    wrk_seconds: int = _int("BENCH_WRK_SECONDS", 15, 5)  # the baseline's own wrk runs 15 s
    seconds: int = _int("BENCH_SECONDS", 30, 10)  # per rate of the latency run
    rates: list[int] = field(default_factory=lambda: _ints("BENCH_RATES", "20,50,100", "20,50,100"))
    daily_members: list[int] = field(
        default_factory=lambda: _ints("BENCH_DAILY_MEMBERS", "100000,1000000", "10000,50000")
    )
    daily_timeout: int = _int("BENCH_DAILY_TIMEOUT", 900, 300)  # per run of the daily job
    skip: frozenset[str] = frozenset(
        part for part in os.environ.get("BENCH_SKIP", "").split(",") if part
    )


SCALE = Scale()
DAILY_FRACTIONS = [0.01, 1.0]


def label(count: int) -> str:
    """100000 -> "100k", 1000000 -> "1m"."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count >= 1000 and count % 1000 == 0:
        return f"{count // 1000}k"
    return str(count)


def main_db_url() -> str:
    return f"{PG_SERVER}/tierflow_bench{'_quick' if SCALE.quick else ''}"


def daily_db_url(members: int) -> str:
    return f"{PG_SERVER}/tierflow_bench_daily_{label(members)}"


def baseline_dir() -> Path:
    """The reference programs: BASELINE_DIR, by default ../shared/bench-baseline beside the
    repository root."""
    given = os.environ.get("BASELINE_DIR", "../shared/bench-baseline")
    path = Path(given)
    return path if path.is_absolute() else (ROOT / path).resolve()


def service_env(database_url: str, *, quiet_hours: str = "") -> dict[str, str]:
    """The environment of every process the benchmark runs (web, workers, commands). Set
    explicitly, so that a developer's .env (DEBUG=true would record every query) has no
    say."""
    env = dict(os.environ)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="benchmark-only-not-secret",
        DEBUG="false",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=REDIS_URL,
        TIERFLOW_QUIET_HOURS=quiet_hours,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def django_setup(database_url: str) -> None:
    """Set up Django in this process against `database_url` (created if missing)."""
    os.environ.update(service_env(database_url))
    sys.path.insert(0, str(ROOT))
    database_ensure(database_url)
    import django

    django.setup()


def database_ensure(url: str, *, recreate: bool = False) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if recreate:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def say(message: str) -> None:
    """Progress, as it happens, stamped in UTC (Django sets its own TZ in the parts that
    set it up, so local time would differ from part to part)."""
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())} UTC] {message}", flush=True)


def result_write(path: str | None, result: dict) -> None:
    """Hand a part's figures back to the suite (or print them when run on its own)."""
    text = json.dumps(result, indent=2, default=str)
    if path:
        Path(path).write_text(text, encoding="utf-8")
    else:
        print(text)


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]
