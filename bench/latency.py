"""End to end: new-member orders posted at a steady rate (open loop: on schedule, whether or
not earlier ones answered) through gunicorn, evaluated by real Celery workers on this
machine; for each order, how long from its recording until its upgrade fired (the tier
change) and until its SMS was queued. Every order is a new member's first, of 2,000 to
3,000 yuan: on the seed programme it moves the member to Silver and queues an SMS.

    .venv/bin/python -m bench.latency [--rates 20,50,100] [--seconds 30] [--out result.json]
"""

import argparse
import http.client
import json
import queue
import random
import threading
import time
from datetime import datetime
from urllib.parse import urlsplit

from .common import SCALE, django_setup, main_db_url, percentile, result_write, say, service_env
from .drain import anyone_waiting, messages_queued, settle, wait_for
from .ingest import api_key
from .procs import Proc, redis_reset, stop_all, web_start, worker_start

SENDERS = 32  # connections: enough that a slow answer never delays the next order


def post_at_rate(url: str, key: str, run: str, rate: int, seconds: int) -> dict:
    """Post rate × seconds orders, the n-th at start + n / rate. Returns answers by status
    and how late, at worst, an order left its schedule."""
    parts = urlsplit(url)
    due: queue.Queue = queue.Queue()
    statuses: dict[int, int] = {}
    late = [0.0]
    lock = threading.Lock()

    def sender() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while (job := due.get()) is not None:
            at, n = job
            pause = at - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # the schedule itself, not a wait for an outcome
            body = {
                "external_id": f"{run}-{n}",
                "member": {"external_id": f"{run}-{n}", "phone": f"137{n:08d}"},
                "amount": f"{random.randint(2000, 2999)}.00",
                "currency": "CNY",
                "placed_at": datetime.now().astimezone().isoformat(),
            }
            with lock:
                late[0] = max(late[0], time.monotonic() - at)
            try:
                conn.request(
                    "POST",
                    "/api/v1/orders/",
                    json.dumps(body),
                    {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
                )
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                conn.close()
                status = 0
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    start = time.monotonic() + 0.5
    for n in range(rate * seconds):
        due.put((start + n / rate, n))
    for _ in threads:
        due.put(None)
    for thread in threads:
        thread.join()
    return {"statuses": statuses, "worst_late_s": late[0]}


def latencies(run: str) -> dict:
    """From the database: each order's recording to its first firing (the upgrade) and to
    its member's first message."""
    from django.db.models import Min, OuterRef, Subquery

    from notifications.models import Notification
    from orders.models import Order
    from rules.models import RuleFiring

    fired = RuleFiring.objects.filter(order=OuterRef("pk")).values("order")
    queued = Notification.objects.filter(member=OuterRef("member")).values("member")
    rows = list(
        Order.objects.filter(external_id__startswith=f"{run}-")
        .annotate(
            fired=Subquery(fired.annotate(at=Min("fired_at")).values("at")),
            queued=Subquery(queued.annotate(at=Min("created_at")).values("at")),
        )
        .order_by("recorded_at")
        .values_list("recorded_at", "fired", "queued")
    )
    tier = [(f - r).total_seconds() for r, f, _ in rows if f]
    sms = [(q - r).total_seconds() for r, _, q in rows if q]
    third = max(1, len(tier) // 3)
    return {
        "orders": len(rows),
        "tier_changes": len(tier),
        "sms": len(sms),
        "tier": {p: percentile(tier, f) for p, f in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "sms_latency": {
            p: percentile(sms, f) for p, f in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        # A flat lag: the last third of the run waits about as long as the first.
        "tier_p50_first_third": percentile(tier[:third], 0.5),
        "tier_p50_last_third": percentile(tier[-third:], 0.5),
    }


def latency(rates: list[int], seconds: int) -> dict:
    from django.utils import timezone

    settle("before the latency run")
    env = service_env(main_db_url())
    key = api_key()
    redis_reset()
    procs: list[Proc | None] = []
    results: dict = {"rates": {}}
    try:
        web, url = web_start(env, workers=2)
        procs += [web, worker_start("messages", 1, env), worker_start("evaluations", 2, env)]
        for rate in rates:
            run = f"L{rate}x{int(time.time())}"
            say(f"Latency: {rate} new-member orders/s for {seconds} s…")
            since = timezone.now()
            sent = post_at_rate(url, key, run, rate, seconds)
            caught_up = wait_for(lambda: not anyone_waiting(), 300, procs)
            wait_for(lambda since=since: not messages_queued(since), 120, procs)
            figures = latencies(run) | sent | {"caught_up": caught_up is not None}
            results["rates"][rate] = figures
            say(
                f"  tier change p50/p95/p99 {_ms(figures['tier'])} ms, "
                f"SMS queued {_ms(figures['sms_latency'])} ms; "
                f"{figures['tier_changes']}/{figures['orders']} upgraded, "
                f"answers {sent['statuses']}"
            )
        results["rss"] = {proc.name: proc.peak_rss() for proc in procs if proc}
    finally:
        stop_all(procs)
        redis_reset()
    return results


def _ms(figures: dict) -> str:
    return " / ".join("-" if v is None else f"{v * 1000:,.0f}" for v in figures.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=",".join(map(str, SCALE.rates)))
    parser.add_argument("--seconds", type=int, default=SCALE.seconds)
    parser.add_argument("--out")
    args = parser.parse_args()
    django_setup(main_db_url())
    rates = [int(part) for part in args.rates.split(",")]
    result_write(args.out, latency(rates, args.seconds))


if __name__ == "__main__":
    main()
