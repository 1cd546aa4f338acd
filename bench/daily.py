"""The daily job through real Celery workers: a base of `--members` Silver and Gold members
(one per size, filled once with COPY), of whom `--fraction` have a points lot that lapsed
last night and a tier that lapsed at midnight; Celery beat's `run_daily` is published and
timed until every due member is written off and renewed or moved down.

    .venv/bin/python -m bench.daily --members N --fraction F [--out result.json]

Each run first puts the base back in the same state (set-based SQL): what an earlier run
wrote is deleted and every member's tier and lot dates are written afresh.
"""

import argparse
import json
import random
import time
from datetime import date, timedelta

from .common import (
    DAILY_FRACTIONS,
    SCALE,
    daily_db_url,
    database_ensure,
    django_setup,
    result_write,
    say,
    service_env,
)
from .procs import Proc, redis_client, redis_reset, stop_all, worker_start

POLL = 0.2
ORDERS_PER_MEMBER = 2
SHAPE = "v1 members={members} orders={orders}"
DUE = "bench_daily_due"  # the due members of the current run, for resets and checks


def prepare(members: int) -> float | None:
    """Reuse the size's base when its marker says it has this shape, else fill it afresh.
    Returns the seconds the fill took (None: reused)."""
    from django.core.management import call_command
    from django.db import connection

    from . import fill

    url = daily_db_url(members)
    django_setup(url)
    call_command("migrate", verbosity=0)
    shape = SHAPE.format(members=members, orders=members * ORDERS_PER_MEMBER)
    if fill.marker_get("daily") == shape:
        say(f"Reusing {url.rsplit('/', 1)[1]} ({shape}).")
        return None
    say(f"Filling {url.rsplit('/', 1)[1]}: {shape}")
    connection.close()
    database_ensure(url, recreate=True)
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _fill(members)
    fill.marker_set("daily", shape)
    say(f"  Filled in {(seconds := time.perf_counter() - started):.0f} s.")
    return seconds


def _fill(members: int) -> None:
    from django.utils import timezone

    from benefits.models import PointsEntry
    from core.days import start_of_day
    from members.models import Member, Tier
    from orders.models import Order

    from . import fill

    fill.seed_load()
    rng = random.Random(3)
    midnight = start_of_day(timezone.localdate())
    base = Tier.objects.get(rank=0).pk
    earned, joined = midnight - timedelta(days=500), midnight - timedelta(days=400)
    say(f"  COPY {members:,} members…")
    columns = ["external_id", "name", "phone", "tier_id", "joined_at"]
    columns += ["event_seq", "evaluated_seq", "pending_since"]  # joined and evaluated
    fill.copy_into(
        Member,
        columns,
        (
            (f"D-{n}", f"会员{n}", f"139{n:08d}", base, joined - timedelta(n % 1500), 1, 1, None)
            for n in range(members)
        ),
    )
    first = Member.objects.order_by("pk").values_list("pk", flat=True).first()
    # Amounts of about 400 a time: some keep Silver (1000 a year), few keep Gold (5000).
    say(f"  COPY {members * ORDERS_PER_MEMBER:,} orders and {members:,} points lots…")
    fill.copy_into(
        Order,
        ["external_id", "member_id", "amount", "currency", "placed_at", "payload_hash"],
        ((f"DO-{n}", first + n // ORDERS_PER_MEMBER, f"{rng.lognormvariate(6, 0.8):.2f}", "CNY",
          midnight - timedelta(minutes=rng.randint(120, 360 * 24 * 60)), "bench")
         for n in range(members * ORDERS_PER_MEMBER)),
    )  # fmt: skip
    fill.copy_into(
        PointsEntry,
        ["member_id", "kind", "points", "reason", "expires_at", "created_at"],
        (
            (first + n, "earn", rng.randint(100, 2000), "bench", midnight, earned)
            for n in range(members)
        ),
    )  # the dates are the reset's to set
    fill.sql(
        """UPDATE members_member m
           SET lifetime_spend = s.total, order_count = s.n, last_order_at = s.last
           FROM (SELECT member_id, SUM(amount) total, COUNT(*) n, MAX(placed_at) last
                 FROM orders_order GROUP BY member_id) s
           WHERE s.member_id = m.id"""
    )
    fill.sql("ANALYZE")


def reset(fraction: float, today: date) -> int:
    """Undo an earlier run and make exactly floor(members × fraction) members due today,
    spread evenly over the ids; everyone else lapses in one to eleven months (never on a
    reminder day) and keeps their lot until next year. Returns the due members."""
    from django.db import connection
    from django.utils import timezone

    from benefits.models import Coupon, GrowthEntry, PointsEntry
    from core.days import start_of_day
    from members.models import Tier, TierChange
    from notifications.models import Notification
    from rules.models import ClockOccurrence, RuleFiring

    from .fill import sql

    # What a run writes, children before the firings they point to. The fill writes no
    # firings and no entries but earned lots, so all of it is a run's.
    for model, where in (
        (Notification, ""),
        (Coupon, "WHERE firing_id IS NOT NULL"),
        (GrowthEntry, "WHERE firing_id IS NOT NULL"),
        (PointsEntry, "WHERE kind <> 'earn' OR firing_id IS NOT NULL"),
        (TierChange, ""),
        (RuleFiring, ""),
        (ClockOccurrence, ""),
    ):
        sql(f"DELETE FROM {model._meta.db_table} {where}")
    # "id IN (the due set)" below is a hashed lookup only if the set fits in work_mem:
    # at 1,000,000 due the default makes it a scan per row, and the reset takes hours.
    sql("SET work_mem = '256MB'")
    sql(f"CREATE TABLE IF NOT EXISTS {DUE} (member_id integer PRIMARY KEY)")
    sql(f"TRUNCATE {DUE}")
    # Member k is due when floor((k+1)·f) steps up: floor(N·f) of them, evenly spread.
    due = sql(
        f"""INSERT INTO {DUE} SELECT id FROM members_member,
                (SELECT min(id) AS first FROM members_member) f
            WHERE floor((id - first + 1) * %s::numeric) > floor((id - first) * %s::numeric)""",
        [fraction, fraction],
    )
    sql(f"ANALYZE {DUE}")
    midnight = start_of_day(today)
    silver, gold = (Tier.objects.get(code=code).pk for code in ("silver", "gold"))
    ends = f"""CASE WHEN id IN (SELECT member_id FROM {DUE})
                    THEN %(midnight)s::timestamptz - interval '1 minute'
                    ELSE %(midnight)s::timestamptz + (30 + id %% 300) * interval '1 day' END"""
    sql(
        f"""UPDATE members_member
            SET tier_id = CASE WHEN id %% 3 = 0 THEN %(gold)s ELSE %(silver)s END,
                tier_expires_at = {ends},
                tier_period_start = {ends} - interval '365 days',
                tier_since = {ends} - interval '365 days',
                tier_floor_id = NULL, tier_floor_until = NULL, updated_at = %(now)s""",
        {"gold": gold, "silver": silver, "midnight": midnight, "now": timezone.now()},
    )
    # Due lots lapsed in the night before today began; the others next year.
    sql(
        f"""UPDATE benefits_pointsentry
            SET expires_at = CASE WHEN member_id IN (SELECT member_id FROM {DUE})
                                  THEN %s::timestamptz - interval '2 hours'
                                  ELSE %s::timestamptz + interval '400 days' END
            WHERE kind = 'earn'""",
        [midnight, midnight],
    )
    with connection.cursor() as cursor:  # autocommit: the rewrite's dead rows go now
        cursor.execute("VACUUM ANALYZE members_member, benefits_pointsentry")
    return due


def _jobs_busy(client) -> bool:
    """A task of the jobs queue waits (in any of kombu's priority lists) or runs
    (kombu's unacked hash holds it until it is acknowledged)."""
    queued = any(client.llen("jobs" + (f"\x06\x16{p}" if p else "")) for p in (0, 3, 6, 9))
    return queued or any("jobs" in json.loads(raw)[1:] for raw in client.hvals("unacked"))


def _left(midnight) -> tuple:
    """(members whose tier is still lapsed, expire entries written)."""
    return _one(
        "SELECT (SELECT count(*) FROM members_member WHERE tier_expires_at <= %s),"
        " (SELECT count(*) FROM benefits_pointsentry WHERE kind = 'expire')",
        [midnight],
    )


def _one(query: str, params=None) -> tuple:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()


def verify(midnight, since) -> dict:
    """Every due member handled once (renewed or moved down, lot written off in full),
    no other member touched (no tier change, write-off, firing or update of theirs)."""
    from django.db import connection

    due = f"SELECT member_id FROM {DUE}"
    expired = """benefits_pointsentry e JOIN benefits_pointsentry l
                 ON l.member_id = e.member_id AND l.kind = 'earn' WHERE e.kind = 'expire'"""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) FILTER (WHERE f.rank = t.rank) AS renewed,
                   count(*) FILTER (WHERE t.rank < f.rank) AS moved_down,
                   count(*) AS tier_changes, count(DISTINCT c.member_id) AS members_changed,
                   (SELECT count(*) FROM benefits_pointsentry WHERE kind = 'expire') AS write_offs,
                   (SELECT count(DISTINCT e.member_id) FROM {expired}
                    AND -e.points = l.points AND e.member_id IN ({due})) AS members_written_off,
                   (SELECT count(*) FROM {expired} AND -e.points <> l.points) AS short_write_offs,
                   (SELECT count(*) FROM members_member WHERE tier_expires_at <= %(midnight)s)
                     AS still_lapsed,
                   (SELECT count(*) FROM members_tierchange WHERE member_id NOT IN ({due}))
                   + (SELECT count(*) FROM rules_rulefiring WHERE member_id NOT IN ({due}))
                   + (SELECT count(*) FROM members_member
                      WHERE updated_at >= %(since)s AND id NOT IN ({due})) AS others_touched,
                   (SELECT count(*) FROM {DUE}) AS due
                FROM members_tierchange c JOIN members_tier f ON f.id = c.from_tier_id
                JOIN members_tier t ON t.id = c.to_tier_id""",
            {"midnight": midnight, "since": since},
        )  # fmt: skip
        found = dict(zip([col.name for col in cursor.description], cursor.fetchone(), strict=True))
    handled = ("tier_changes", "members_changed", "members_written_off", "write_offs")
    found["ok"] = {found[key] for key in handled} == {found["due"]} and not (
        found["short_write_offs"] or found["still_lapsed"] or found["others_touched"]
    )
    return found


def daily(members: int, fraction: float) -> dict:
    """Fill or reuse the size's base, make `fraction` of it due today, then publish
    run_daily to a jobs worker (and a messages worker for what lapses send) and wait until
    the jobs queue is idle and the database shows the work done."""
    filled_in = prepare(members)  # sets Django up: the imports below need it
    from django.utils import timezone

    from core.days import start_of_day
    from rules.tasks import run_daily

    today = timezone.localdate()
    midnight = start_of_day(today)
    started = time.perf_counter()
    due = reset(fraction, today)
    say(f"  Reset: {due:,} of {members:,} members due ({time.perf_counter() - started:.0f} s).")
    env = service_env(daily_db_url(members))
    redis_reset()
    client = redis_client()
    procs: list[Proc] = []
    try:
        procs.append(worker_start("messages", 1, env))
        procs.append(worker_start("jobs", 2, env))
        say(f"  Running the daily job for {today} ({due:,} due members)…")
        since, started = timezone.now(), time.monotonic()
        run_daily.delay(today.isoformat())
        # Redis first: the database is asked only once the queue looks idle.
        while _jobs_busy(client) or _left(midnight) != (0, due):
            late = time.monotonic() - started > SCALE.daily_timeout
            if late or not all(proc.alive() for proc in procs):
                lapsed, written = _left(midnight)
                raise RuntimeError(
                    f"daily job not done after {time.monotonic() - started:.0f} s: {lapsed:,} "
                    f"tiers still lapsed, {written:,} of {due:,} lots written off\n"
                    + "\n".join(f"--- {p.name}\n{p.log_tail(20)}" for p in procs)
                )
            time.sleep(POLL)
        seconds = time.monotonic() - started
        rss = {proc.name: proc.peak_rss() for proc in procs}
        evaluations = client.llen("evaluations")  # nothing should be published there
    finally:
        stop_all(procs)
        redis_reset()
    # The last wall-clock stamp the run wrote: members' updated_at (tier moves), firings
    # and messages. It misses each batch's commit and what it publishes after; tier
    # changes and write-offs carry the lapse's own moment, not the clock's.
    last, messages, sent = _one(
        f"""SELECT greatest((SELECT max(updated_at) FROM members_member
                             WHERE id IN (SELECT member_id FROM {DUE})),
                            (SELECT max(fired_at) FROM rules_rulefiring), max(created_at)),
                   count(*), count(*) FILTER (WHERE status <> 'queued')
            FROM notifications_notification"""
    )
    checked = verify(midnight, since)
    result = {
        "members": members,
        "fraction": fraction,
        "due": due,
        "seconds": seconds,
        "db_seconds": (last - since).total_seconds() if last and due else None,
        "due_per_second": due / seconds,
        "ms_per_due": 1000 * seconds / due if due else None,
        "tier_changes": checked["tier_changes"],
        "points_written_off": checked["write_offs"],
        "messages": messages,
        "messages_out_by_finish": sent,
        "evaluations_published": evaluations,
        "rss": rss,
        "filled_in": filled_in,
        "verify": checked,
    }
    say(
        f"  {due:,} due of {members:,}: {seconds:.1f} s wall "
        f"({result['db_seconds'] or 0:.1f} s by the database stamps), "
        f"{result['ms_per_due'] or 0:.2f} ms per due member; verified: {checked['ok']}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=SCALE.daily_members[0])
    parser.add_argument("--fraction", type=float, default=DAILY_FRACTIONS[0])
    parser.add_argument("--out")
    args = parser.parse_args()
    if not 0 < args.fraction <= 1:
        parser.error("--fraction must be in (0, 1]")
    result_write(args.out, daily(args.members, args.fraction))


if __name__ == "__main__":
    main()
