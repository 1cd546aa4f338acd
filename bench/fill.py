"""Filling a benchmark database fast: COPY into the tables (minutes for millions of rows,
where the ORM would take hours), the seed programme, and 50 benchmark rules.

Columns are given by name; every other column of the model gets its default, so a field
the engine adds with a default needs no change here. Run inside Django (common.django_setup).
"""

import io
import json
import random
import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from django.db import connection, models
from django.utils import timezone

from .common import ROOT, say

SEED = ROOT / "rules" / "programmes" / "seed.yaml"
CHUNK = 20_000  # rows per write to COPY
TAG_CODES = ("vip", "wholesale", "staff", "churn-risk")


def _text(value: object) -> str:
    """A value in COPY's text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(raw, escaped)
    return text


def _fixed_value(field: models.Field, now: datetime) -> object:
    """What a column nobody gave gets: its default, evaluated once for every row."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    if field.has_default():
        return field.get_default()
    if field.null:
        return None
    if field.empty_strings_allowed:
        return ""
    raise RuntimeError(
        f"{field.model.__name__}.{field.name} has no default: bench/fill.py must give it"
    )


def copy_into(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY `rows` (values for `columns`, by attname) into the model's table. Values that
    are str go in as they are: the benchmark's own text has no tabs or newlines."""
    fields = {f.attname: f for f in model._meta.concrete_fields if not f.primary_key}
    unknown = set(columns) - set(fields)
    if unknown:
        raise RuntimeError(f"{model.__name__} has no column(s) {sorted(unknown)}")
    now = timezone.now()
    rest = [f for name, f in fields.items() if name not in columns]
    tail = "".join("\t" + _text(_fixed_value(f, now)) for f in rest)
    names = [fields[name].column for name in columns] + [f.column for f in rest]
    quote = connection.ops.quote_name
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(map(quote, names))}) FROM STDIN"
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(v if type(v) is str else _text(v) for v in row))
            buffer.write(tail)
            buffer.write("\n")
            count += 1
            if count % CHUNK == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    return count


def sql(statement: str, params: Sequence | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def marker_get(key: str) -> str | None:
    """What the fill wrote about this database (its shape), in a table of the benchmark's
    own: it says whether a database can be reused."""
    sql("CREATE TABLE IF NOT EXISTS bench_fill (key text PRIMARY KEY, value text NOT NULL)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM bench_fill WHERE key = %s", [key])
        row = cursor.fetchone()
    return row[0] if row else None


def marker_set(key: str, value: str) -> None:
    sql("CREATE TABLE IF NOT EXISTS bench_fill (key text PRIMARY KEY, value text NOT NULL)")
    sql(
        "INSERT INTO bench_fill VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = %s",
        [key, value, value],
    )


def seed_load() -> None:
    from members.models import Tag
    from rules.programme.load import programme_load

    programme_load(SEED.read_text(encoding="utf-8"))
    for code in TAG_CODES:
        Tag.objects.get_or_create(code=code, defaults={"name": code})


def _spread(rng: random.Random, now: datetime, days: int) -> str:
    return (now - timedelta(minutes=rng.randint(10, days * 24 * 60))).isoformat()


def main_fill(members: int, history: int) -> None:
    """The evaluation and ingestion base: `members` members (external ids B-0, B-1, …) with
    `history` orders over three years (about 250 yuan each), two entries in each ledger and
    three engagements per member, a few tags; each member on the tier their spend earned
    (the seed's lines: 2000 Silver, 10000 Gold), so that an upgrade fires when an order
    crosses a line, as in a live programme."""
    from benefits.models import GrowthEntry, PointsEntry
    from members.models import EngagementEvent, EngagementKind, Member, Tag, Tier
    from orders.models import Order

    started = time.perf_counter()
    seed_load()
    rng = random.Random(1)
    now = timezone.now()
    base = Tier.objects.get(rank=0).pk
    say(f"  COPY {members:,} members…")
    copy_into(
        Member,
        [
            "external_id",
            "name",
            "phone",
            "tier_id",
            "tier_since",
            "joined_at",
            "birthday",
            "event_seq",
            "evaluated_seq",
            "pending_since",
        ],
        (
            (
                f"B-{n}",
                f"会员{n}",
                f"138{n:08d}",
                base,
                now,
                now - timedelta(days=rng.randint(1, 2000)),
                f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                1,
                1,  # joining evaluated: nobody waits
                None,
            )
            for n in range(members)
        ),
    )
    first = Member.objects.order_by("pk").values_list("pk", flat=True).first()
    ids = range(first, first + members)
    say(f"  COPY {history:,} orders…")
    copy_into(
        Order,
        ["external_id", "member_id", "amount", "currency", "placed_at", "payload_hash"],
        (
            (
                f"H-{n}",
                rng.choice(ids),
                f"{rng.lognormvariate(5, 1):.2f}",
                "CNY",
                _spread(rng, now, 3 * 365),
                "bench",
            )
            for n in range(history)
        ),
    )
    say("  COPY ledgers, tags and engagements…")
    copy_into(
        PointsEntry,
        ["member_id", "kind", "points", "reason"],
        ((rng.choice(ids), "bonus", rng.randint(1, 500), "bench") for _ in range(members * 2)),
    )
    copy_into(
        GrowthEntry,
        ["member_id", "kind", "points", "reason"],
        ((rng.choice(ids), "bonus", rng.randint(1, 100), "bench") for _ in range(members * 2)),
    )
    tags = list(Tag.objects.values_list("pk", flat=True))
    copy_into(
        Member.tags.through,
        ["member_id", "tag_id"],
        sorted({(rng.choice(ids), rng.choice(tags)) for _ in range(members // 2)}),
    )
    kinds = list(EngagementKind.objects.values_list("pk", flat=True))
    copy_into(
        EngagementEvent,
        ["external_id", "member_id", "kind_id", "occurred_at", "payload_hash"],
        (
            (f"BE-{n}", rng.choice(ids), rng.choice(kinds), _spread(rng, now, 90), "bench")
            for n in range(members * 3)
        ),
    )
    say("  Totals and tiers from the orders…")
    sql(
        """UPDATE members_member m
           SET lifetime_spend = s.total, order_count = s.n, last_order_at = s.last
           FROM (SELECT member_id, SUM(amount) total, COUNT(*) n, MAX(placed_at) last
                 FROM orders_order GROUP BY member_id) s
           WHERE s.member_id = m.id"""
    )
    tiers_by_spend(now)
    sql("ANALYZE")
    say(f"  Filled in {time.perf_counter() - started:.0f} s.")


def tiers_by_spend(now: datetime) -> None:
    """Put each member on the tier the seed's upgrade lines give their lifetime spend, with
    a period that started within the last year."""
    from members.models import Tier

    for code, low, high in (("silver", 2000, 10000), ("gold", 10000, None)):
        tier = Tier.objects.get(code=code)
        sql(
            """UPDATE members_member
               SET tier_id = %s,
                   tier_period_start = %s::timestamptz - (id * 7919 %% 365) * interval '1 day',
                   tier_since = %s::timestamptz - (id * 7919 %% 365) * interval '1 day',
                   tier_expires_at = %s::timestamptz + (365 - id * 7919 %% 365) * interval '1 day'
               WHERE lifetime_spend >= %s AND (%s::numeric IS NULL OR lifetime_spend < %s)""",
            [tier.pk, now, now, now, low, high, high],
        )


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


def rules_install(count: int = 50) -> int:
    """A programme's shape: most rules are once-only thresholds (upgrades, milestones) that
    an order rarely crosses; one in ten is a recurring bonus that fires more often. Returns
    the live order_paid rules (these and the seed's)."""
    from rules.models import ActionKind, Rule
    from rules.services.authoring import rule_upsert

    Rule.objects.filter(code__startswith="bench-").exclude(
        code__in=[f"bench-{n:02d}" for n in range(count)]
    ).update(is_active=False)
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
    return Rule.objects.filter(is_active=True, trigger="order_paid").count()
