"""How many orders per second the engine evaluates, with 50 active rules, on a member base
of 100,000 members and 1,000,000 orders in PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tierflow_bench \\
        .venv/bin/python bench/evaluate_orders.py [--orders N] [--members N] [--history N]

The database is created if missing and filled once (COPY; a few minutes); later runs reuse
it. Each run records fresh orders for random members, then times their evaluation: the
same path a Celery worker runs (lock the member, compute the facts the 50 rules need,
evaluate them, apply firings). Printed: orders evaluated per second in one process, the
latency percentiles, and the queries one evaluation makes.
"""

import argparse
import io
import multiprocessing
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tierflow_bench")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import psycopg


def ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


ensure_database(os.environ["DATABASE_URL"])

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from config.celery import app as celery_app  # noqa: E402
from members.models import EngagementKind, Member, Tag, Tier  # noqa: E402
from orders.services import order_record  # noqa: E402
from rules.models import ActionKind, Rule  # noqa: E402
from rules.programme.load import programme_load  # noqa: E402
from rules.services.evaluation import member_evaluate  # noqa: E402
from rules.services.saving import rule_upsert  # noqa: E402

SEED = Path(__file__).resolve().parent.parent / "rules" / "programmes" / "seed.yaml"


def copy_rows(table: str, columns: list[str], rows) -> None:
    """COPY rows (tuples) into a table: far faster than INSERTs for millions of rows."""
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)


def fill(members: int, history: int) -> None:
    if Member.objects.count() >= members:
        print(f"Reusing the member base ({Member.objects.count():,} members).")
        return
    started = time.perf_counter()
    programme_load(SEED.read_text(encoding="utf-8"))
    for code in ("vip", "wholesale", "staff", "churn-risk"):
        Tag.objects.get_or_create(code=code, defaults={"name": code})
    rng = random.Random(1)
    now = timezone.now()
    tiers = list(Tier.objects.order_by("rank").values_list("pk", flat=True))
    print(f"Creating {members:,} members…")
    copy_rows(
        "members_member",
        [
            "external_id",
            "name",
            "phone",
            "email",
            "tier_id",
            "tier_since",
            "joined_at",
            "birthday",
            "lifetime_spend",
            "order_count",
            "created_at",
            "updated_at",
            "enqueued_at",
            "evaluated_at",
            "language",
        ],
        (
            (
                f"B-{n}",
                f"会员{n}",
                f"138{n:08d}",
                "",
                rng.choice(tiers[:2]),
                now.isoformat(),
                (now - timedelta(days=rng.randint(1, 2000))).isoformat(),
                f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                0,
                0,
                now.isoformat(),
                now.isoformat(),
                now.isoformat(),
                now.isoformat(),
                "zh-hans",
            )
            for n in range(members)
        ),
    )
    first = Member.objects.order_by("pk").values_list("pk", flat=True).first()
    ids = range(first, first + members)
    print(f"Creating {history:,} orders…")
    copy_rows(
        "orders_order",
        [
            "external_id",
            "member_id",
            "amount",
            "refunded_amount",
            "currency",
            "placed_at",
            "payload_hash",
            "recorded_at",
            "evaluated_at",
            "enqueued_at",
        ],
        (
            (
                f"H-{n}",
                rng.choice(ids),
                f"{rng.lognormvariate(5, 1):.2f}",
                0,
                "CNY",
                (now - timedelta(minutes=rng.randint(10, 3 * 365 * 24 * 60))).isoformat(),
                "bench",
                now.isoformat(),
                now.isoformat(),
                now.isoformat(),
            )
            for n in range(history)
        ),
    )
    print("Ledgers, tags and engagements…")
    copy_rows(
        "benefits_pointsentry",
        ["member_id", "kind", "points", "reason", "created_at", "external_id", "payload_hash"],
        (
            (rng.choice(ids), "bonus", rng.randint(1, 500), "bench", now.isoformat(), "", "")
            for _ in range(members * 2)
        ),
    )
    copy_rows(
        "benefits_growthentry",
        ["member_id", "kind", "points", "reason", "created_at"],
        (
            (rng.choice(ids), "bonus", rng.randint(1, 100), "bench", now.isoformat())
            for _ in range(members * 2)
        ),
    )
    tag_ids = list(Tag.objects.values_list("pk", flat=True))
    copy_rows(
        "members_member_tags",
        ["member_id", "tag_id"],
        {(rng.choice(ids), rng.choice(tag_ids)) for _ in range(members // 2)},
    )
    kinds = list(EngagementKind.objects.values_list("pk", flat=True))
    copy_rows(
        "members_engagementevent",
        [
            "external_id",
            "member_id",
            "kind_id",
            "occurred_at",
            "payload_hash",
            "recorded_at",
            "evaluated_at",
            "enqueued_at",
        ],
        (
            (
                f"BE-{n}",
                rng.choice(ids),
                rng.choice(kinds),
                (now - timedelta(minutes=rng.randint(10, 90 * 24 * 60))).isoformat(),
                "bench",
                now.isoformat(),
                now.isoformat(),
                now.isoformat(),
            )
            for n in range(members * 3)
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE members_member m
               SET lifetime_spend = s.total, order_count = s.n, last_order_at = s.last
               FROM (SELECT member_id, SUM(amount) total, COUNT(*) n, MAX(placed_at) last
                     FROM orders_order GROUP BY member_id) s
               WHERE s.member_id = m.id"""
        )
        cursor.execute("ANALYZE")
    print(f"Filled in {time.perf_counter() - started:.0f} s.")


# Thresholds like a programme's: a few per cent of members cross each (the base averages
# ten orders of about 250 yuan each).
FACTS = [
    ("lifetime_spend", "gte", lambda r: r.choice([8000, 12000, 20000]), None),
    ("spend_in_days", "gte", lambda r: r.choice([2000, 3000, 5000]), lambda r: r.choice([30, 90])),
    ("orders_in_days", "gte", lambda r: r.randint(5, 8), lambda r: r.choice([30, 90])),
    ("avg_order_value", "gte", lambda r: r.choice([800, 1200]), None),
    ("avg_order_value_in_days", "gte", lambda r: r.choice([1000, 1500]), lambda r: 365),
    ("points_balance", "gte", lambda r: r.choice([1500, 2000]), None),
    ("growth_points", "gte", lambda r: r.choice([400, 500]), None),
    ("tier", "in", lambda r: "gold", None),
    ("tags", "in", lambda r: r.choice(["vip", "staff"]), None),
    ("engagements_in_days", "gte", lambda r: r.randint(4, 6), lambda r: r.choice([7, 30])),
    ("days_since_joined", "between", lambda r: "1000, 1100", None),
    ("order_amount", "gte", lambda r: r.choice([2000, 3000]), None),
]


def install_rules(count: int) -> None:
    """A programme's shape: most rules are once-only thresholds (upgrades, milestones) that
    an order rarely crosses; one in ten is a recurring bonus that fires more often."""
    Rule.objects.filter(code__startswith="bench-").update(is_active=False)
    rng = random.Random(2)
    for n in range(count):
        chosen = rng.sample(FACTS, 3)
        conditions = [
            {
                "position": i + 1,
                "fact": fact,
                "op": op,
                "value": str(value(rng)),
                "days": days(rng) if days else None,
            }
            for i, (fact, op, value, days) in enumerate(chosen)
        ]
        recurring = n % 10 == 0
        rule_upsert(
            code=f"bench-{n:02d}",
            name=f"Benchmark rule {n}",
            trigger="order_paid",
            priority=100 + n,
            is_active=True,
            firing_limit=rng.choice(["per_month", "every_time"]) if recurring else "once",
            logic=rng.choice(["", "", "(1 or 2) and 3"]),
            conditions=conditions,
            actions=[{"position": 1, "kind": ActionKind.AWARD_POINTS, "points": 10}],
        )
    live = Rule.objects.filter(is_active=True, trigger="order_paid").count()
    print(f"{live} active order_paid rules (50 benchmark rules and the seed's).")


def record_orders(count: int, members: int) -> list[tuple[int, int]]:
    """New orders for random members, recorded but not evaluated: (member id, order id)."""
    rng = random.Random()
    member_ids = list(Member.objects.values_list("external_id", flat=True)[:members])
    run = f"{int(time.time())}"
    recorded = []
    for n in range(count):
        order, _ = order_record(
            external_id=f"R{run}-{n}",
            member=rng.choice(member_ids),
            amount=Decimal(f"{rng.lognormvariate(5, 1):.2f}"),
            currency="CNY",
            placed_at=timezone.now(),
        )
        recorded.append((order.member_id, order.pk))
    return recorded


def evaluate_all(orders: list[tuple[int, int]]) -> tuple[list[float], int]:
    """Evaluate each order as a worker would; (latencies, rules fired)."""
    latencies, fired = [], 0
    for member_id, order_id in orders:
        began = time.perf_counter()
        result = member_evaluate(member_id=member_id, trigger="order_paid", subject_id=order_id)
        latencies.append(time.perf_counter() - began)
        fired += len(result.fired)
    return latencies, fired


def _in_worker(orders: list[tuple[int, int]]) -> tuple[list[float], int]:
    connection.close()  # each process opens its own connection
    return evaluate_all(orders)


def report(title: str, latencies: list[float], fired: int, elapsed: float) -> None:
    latencies = sorted(latencies)
    print(
        f"{title}: {len(latencies):,} orders in {elapsed:.1f} s = "
        f"{len(latencies) / elapsed:,.0f} orders/s; latency p50 "
        f"{statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms; "
        f"{fired / len(latencies):.2f} rules fired per order"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders per run (2000)")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=1_000_000, help="orders already recorded")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count(), help="for the parallel run (CPUs)"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("The benchmark runs on PostgreSQL: set DATABASE_URL=postgres://…")
    call_command("migrate", verbosity=0)
    fill(args.members, args.history)
    install_rules(50)
    celery_app.conf.task_always_eager = False  # record now, evaluate below, timed
    celery_app.conf.broker_url = "memory://localhost/"
    print(f"Recording {args.orders:,} new orders…")
    orders = record_orders(args.orders, args.members)
    member_id, order_id = orders.pop()
    with CaptureQueriesContext(connection) as queries:
        member_evaluate(member_id=member_id, trigger="order_paid", subject_id=order_id)
    print(f"\nQueries in one evaluation: {len(queries)}")
    started = time.perf_counter()
    latencies, fired = evaluate_all(orders)
    report("One process", latencies, fired, time.perf_counter() - started)

    orders = record_orders(args.orders, args.members)
    connection.close()
    shares = [orders[i :: args.processes] for i in range(args.processes)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.processes) as pool:
        results = pool.map(_in_worker, shares)
    elapsed = time.perf_counter() - started
    report(
        f"{args.processes} processes",
        [latency for part, _ in results for latency in part],
        sum(count for _, count in results),
        elapsed,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM orders_order")
        order_total = cursor.fetchone()[0]
    print(f"Base: {Member.objects.count():,} members, {order_total:,} orders, 50 active rules.")


if __name__ == "__main__":
    main()
