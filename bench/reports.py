"""The reports at scale: a base of `--members` members and `--orders` orders over two years
(filled once by COPY, with refunds, tier changes by rule, by hand and by lapse, points,
coupons, messages and firings in proportion), then each report computed for a whole year
by day, by week and by month, and the dashboard's first screen (every report for the last
twelve months by month, rendered), each timed.

    .venv/bin/python -m bench.reports --members 1000000 --orders 10000000 [--out result.json]

Target (README, Performance): every report for a year by day < 2 s; the dashboard's first
screen < 3 s.
"""

import argparse
import html
import random
import re
import time
from datetime import timedelta

from .common import PG_SERVER, database_ensure, django_setup, label, result_write, say

SHAPE = "v1 members={members} orders={orders}"
TARGET_DAY_SECONDS, TARGET_DASHBOARD_SECONDS = 2.0, 3.0


def db_url(members: int, orders: int) -> str:
    return f"{PG_SERVER}/tierflow_bench_reports_{label(members)}_{label(orders)}"


def prepare(members: int, orders: int) -> float | None:
    from django.core.management import call_command
    from django.db import connection

    from . import fill

    url = db_url(members, orders)
    django_setup(url)
    call_command("migrate", verbosity=0)
    shape = SHAPE.format(members=members, orders=orders)
    if fill.marker_get("reports") == shape:
        say(f"Reusing {url.rsplit('/', 1)[1]} ({shape}).")
        return None
    say(f"Filling {url.rsplit('/', 1)[1]}: {shape}")
    connection.close()
    database_ensure(url, recreate=True)
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _fill(members, orders)
    fill.marker_set("reports", shape)
    say(f"  Filled in {(seconds := time.perf_counter() - started):.0f} s.")
    return seconds


def _fill(members: int, orders: int) -> None:
    from django.utils import timezone

    from benefits.models import Coupon, CouponTemplate, PointsEntry
    from members.models import Member, Tier, TierChange
    from notifications.models import Notification
    from orders.models import Order, Refund
    from rules.models import Rule, RuleFiring

    from . import fill

    fill.seed_load()
    rng = random.Random(11)
    now = timezone.now()
    days = 730
    tiers = list(Tier.objects.order_by("rank").values_list("pk", flat=True))

    def moment(within_days: int = days) -> str:
        return (now - timedelta(minutes=rng.randint(10, within_days * 24 * 60))).isoformat()

    say(f"  COPY {members:,} members…")
    fill.copy_into(
        Member,
        ["external_id", "name", "phone", "tier_id", "joined_at", "event_seq", "evaluated_seq",
         "pending_since"],
        ((f"R-{n}", f"会员{n}", f"137{n:08d}", tiers[0], moment(3 * 365), 1, 1, None)
         for n in range(members)),
    )  # fmt: skip
    first = Member.objects.order_by("pk").values_list("pk", flat=True).first()

    def member() -> int:
        return first + rng.randrange(members)

    say(f"  COPY {orders:,} orders…")
    fill.copy_into(
        Order,
        ["external_id", "member_id", "amount", "currency", "placed_at", "payload_hash"],
        ((f"RO-{n}", member(), f"{rng.lognormvariate(5, 1):.2f}", "CNY", moment(), "bench")
         for n in range(orders)),
    )  # fmt: skip
    first_order = Order.objects.order_by("pk").values_list("pk", flat=True).first()
    say("  COPY refunds, tier changes, points, coupons, messages and firings…")
    refunds = orders // 100
    fill.copy_into(
        Refund,
        ["external_id", "order_id", "member_id", "amount", "refunded_at", "payload_hash"],
        ((f"RR-{n}", first_order + n * 97 % orders, member(), "10.00", moment(), "bench")
         for n in range(refunds)),
    )  # fmt: skip
    causes = ["rule"] * 6 + ["lapse"] * 3 + ["manual", "refund"]
    changes = members // 2

    def change(n: int) -> tuple:
        low, high = sorted(rng.sample(range(len(tiers)), 2))
        cause = rng.choice(causes)
        up = cause in ("rule", "manual")
        source, target = (tiers[low], tiers[high]) if up else (tiers[high], tiers[low])
        return (member(), source, target, "bench", cause, moment(), 0)

    fill.copy_into(
        TierChange,
        ["member_id", "from_tier_id", "to_tier_id", "reason", "cause", "created_at", "seq"],
        (change(n) for n in range(changes)),
    )
    kinds = ["earn"] * 5 + ["redeem", "expire", "reverse"]

    def entry(n: int) -> tuple:
        kind = rng.choice(kinds)
        points = rng.randint(10, 500) * (1 if kind == "earn" else -1)
        expires = (
            (now + timedelta(days=rng.randint(-200, 500))).isoformat() if kind == "earn" else None
        )
        return (member(), kind, points, "bench", expires, moment())

    fill.copy_into(
        PointsEntry,
        ["member_id", "kind", "points", "reason", "expires_at", "created_at"],
        (entry(n) for n in range(members * 2)),
    )
    templates = list(CouponTemplate.objects.values_list("pk", flat=True))
    statuses = ["issued"] * 3 + ["redeemed"] * 2 + ["void"]

    def coupon(n: int) -> tuple:
        issued = now - timedelta(minutes=rng.randint(10, days * 24 * 60))
        status = rng.choice(statuses)
        redeemed = (issued + timedelta(days=3)).isoformat() if status == "redeemed" else None
        voided = (issued + timedelta(days=2)).isoformat() if status == "void" else None
        given = "50.00" if status == "redeemed" else None
        return (f"RC{n:010d}", rng.choice(templates), member(), "gift", "amount", "300", "50",
                "exclusive", issued.isoformat(), (issued + timedelta(days=15)).isoformat(),
                status, redeemed, voided, given)  # fmt: skip

    fill.copy_into(
        Coupon,
        ["code", "template_id", "member_id", "name", "discount", "min_spend", "amount_off",
         "stacking", "issued_at", "expires_at", "status", "redeemed_at", "voided_at",
         "discount_given"],
        (coupon(n) for n in range(members // 3)),
    )  # fmt: skip
    channels, states = (
        ["sms", "sms", "push", "email"],
        ["sent", "delivered", "failed", "suppressed"],
    )
    fill.copy_into(
        Notification,
        ["member_id", "channel", "purpose", "body", "status", "created_at"],
        ((member(), rng.choice(channels), "transactional", "bench", rng.choice(states), moment())
         for _ in range(members // 2)),
    )  # fmt: skip
    rules = list(Rule.objects.values_list("pk", flat=True))
    fill.copy_into(
        RuleFiring,
        ["rule_id", "member_id", "occurrence_key", "trigger", "rule_version", "fired_at"],
        ((rng.choice(rules), member(), f"bench:{n}", "order_paid", 1, moment())
         for n in range(members // 3)),
    )  # fmt: skip
    fill.sql("ANALYZE")


STATEMENT_TIMEOUT_SECONDS = 120  # a report slower than this is reported as "> 120"


def timed(compute) -> float | None:
    """Seconds `compute` took, or None when one of its statements ran past the timeout."""
    from django.db import OperationalError, connection

    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT_SECONDS}s'")
    started = time.perf_counter()
    try:
        compute()
    except OperationalError:
        connection.close()  # the cancelled statement's transaction is gone
        return None
    return time.perf_counter() - started


def _seconds(value: float | None) -> str:
    return f"> {STATEMENT_TIMEOUT_SECONDS}" if value is None else f"{value:.2f}"


RECENT, BACKDATED = 1_000, 10  # orders recorded after the roll-up: today's, and back-dated


def _orders_since_rollup(members: int, count: int, *, back_dated: bool) -> None:
    """`count` orders recorded now, after the roll-up: placed in the last hour, or on days
    spread over the year (each a bucket the reports must then count raw)."""
    from django.utils import timezone

    from members.models import Member
    from orders.models import Order

    from . import fill

    rng, now = random.Random(time.time()), timezone.now()
    first = Member.objects.order_by("pk").values_list("pk", flat=True).first()
    tag = f"{int(time.time())}-{int(back_dated)}"
    placed = [
        now
        - (
            timedelta(days=rng.randint(1, 364))
            if back_dated
            else timedelta(minutes=rng.randint(1, 60))
        )
        for _ in range(count)
    ]
    fill.copy_into(
        Order,
        ["external_id", "member_id", "amount", "currency", "placed_at", "payload_hash"],
        ((f"RL-{tag}-{n}", first + rng.randrange(members), "88.00", "CNY", at.isoformat(),
          "bench") for n, at in enumerate(placed)),
    )  # fmt: skip


def _by_day(reports, period) -> dict[str, float | None]:
    from reports.tables import report_table

    return {name: timed(lambda r=report: report_table(r, period)) for name, report in reports}


def _rollup(rebuild: bool) -> float:
    from reports.rollup import reports_rollup

    started = time.perf_counter()
    reports_rollup(rebuild=rebuild, lag=timedelta(0), say=lambda message: say(f"    {message}"))
    return time.perf_counter() - started


def run(members: int, orders: int, intervals: list[str], dashboard_too: bool) -> dict:
    filled = prepare(members, orders)
    say("Rolling the reports up from scratch…")
    rebuild = _rollup(rebuild=True)
    say(f"  Rolled up in {rebuild:.0f} s.")
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import override_settings
    from django.utils import timezone

    from reports.periods import Period
    from reports.registry import REPORTS
    from reports.tables import report_table

    today = timezone.localdate()
    year_ago = today - timedelta(days=364)
    figures: dict[str, dict[str, float]] = {}
    for name, report in REPORTS.items():
        figures[name] = {}
        for interval in intervals:
            seconds = timed(
                lambda r=report, i=interval: report_table(r, Period(year_ago, today, i))
            )
            figures[name][interval] = seconds
            say(f"  {name}, a year by {interval}: {_seconds(seconds)} s")
    year_by_day = Period(year_ago, today, "day")
    say(f"Recording {RECENT:,} orders placed in the last hour, after the roll-up…")
    _orders_since_rollup(members, RECENT, back_dated=False)
    live = _by_day(REPORTS.items(), year_by_day)
    say("  " + ", ".join(f"{name} {_seconds(s)} s" for name, s in live.items()))
    say(f"Recording {BACKDATED:,} more, back-dated to days spread over the year…")
    _orders_since_rollup(members, BACKDATED, back_dated=True)
    back_dated = _by_day(REPORTS.items(), year_by_day)
    say("  " + ", ".join(f"{name} {_seconds(s)} s" for name, s in back_dated.items()))
    catch_up = _rollup(rebuild=False)
    say(f"  The roll-up catching up with them: {catch_up:.1f} s.")
    result = {
        "members": members,
        "orders": orders,
        "filled_in": filled,
        "intervals": intervals,
        "reports": figures,
        "rollup_rebuild": rebuild,
        "since_rollup": RECENT + BACKDATED,
        "reports_live": live,
        "reports_back_dated": back_dated,
        "rollup_catch_up": catch_up,
        "dashboard": None,
        "dashboard_measured": dashboard_too,
        "target_day": TARGET_DAY_SECONDS,
        "target_dashboard": TARGET_DASHBOARD_SECONDS,
    }
    if not dashboard_too:
        return result
    user, _ = get_user_model().objects.get_or_create(
        username="bench-reports", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        pages = []
        dashboard = timed(lambda: pages.append(client.get("/admin/reports/dashboard/")))
        assert dashboard is None or pages[0].status_code == 200, pages
        # The addresses the page's script loads its sections from.
        page = pages[0].content.decode() if pages else ""
        urls = [html.unescape(url) for url in re.findall(r'data-src="([^"]+)"', page)]
        statuses = []
        sections = timed(lambda: statuses.extend(client.get(url).status_code for url in urls))
    assert sections is None or set(statuses) == {200}, statuses
    say(f"  dashboard, the last twelve months by month: first screen {_seconds(dashboard)} s")
    say(f"  its {len(urls)} sections, loaded one after another: {_seconds(sections)} s")
    result["dashboard"], result["dashboard_sections"] = dashboard, sections
    return result


def table(result: dict) -> str:
    lines = [
        f"reports benchmark: {result['members']:,} members, {result['orders']:,} orders; "
        "seconds to compute a year",
        "",
        "| report | "
        + " | ".join(f"by {i}" for i in result["intervals"])
        + f" | by day, {RECENT:,} orders since the roll-up | by day, {BACKDATED} more back-dated"
        " | target | met |",
        "| --- " * (len(result["intervals"]) + 5) + "|",
    ]
    for name, by in result["reports"].items():
        day, live = by.get("day"), result["reports_live"][name]
        fast = all(s is not None and s < result["target_day"] for s in (day, live))
        met = "yes" if fast else "NO"
        cells = " | ".join(_seconds(by[i]) for i in result["intervals"])
        back = _seconds(result["reports_back_dated"][name])
        lines.append(
            f"| {name} | {cells} | {_seconds(live)} | {back} "
            f"| < {result['target_day']:g} by day | {met} |"
        )
    if result["dashboard_measured"]:
        dashboard = result["dashboard"]
        met = "yes" if dashboard is not None and dashboard < result["target_dashboard"] else "NO"
        blank = " |" * (len(result["intervals"]) + 1)
        lines.append(
            f"| dashboard, first screen | {_seconds(dashboard)}{blank} "
            f"| < {result['target_dashboard']:g} | {met} |"
        )
        lines.append(
            f"| dashboard, every section one after another | "
            f"{_seconds(result['dashboard_sections'])}{blank} | | |"
        )
    lines += [
        "",
        f"Roll-up from scratch: {result['rollup_rebuild']:.0f} s; catching up with the "
        f"{result['since_rollup']:,} orders recorded since: {result['rollup_catch_up']:.1f} s.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--intervals", default="day,week,month", help="comma-separated")
    parser.add_argument(
        "--no-dashboard", action="store_true", help="skip timing the dashboard's first screen"
    )
    parser.add_argument("--out")
    args = parser.parse_args()
    result = run(args.members, args.orders, args.intervals.split(","), not args.no_dashboard)
    print(table(result), flush=True)
    result_write(args.out, result)


if __name__ == "__main__":
    main()
