"""Evaluation throughput through real Celery workers: a backlog of new orders for random
known members, recorded while no worker runs, then drained by an evaluations worker of
`--concurrency` prefork processes, with a messages worker delivering what the rules send.

    .venv/bin/python -m bench.evaluate --concurrency 2 [--backlog N] [--out result.json]

Timed from the publish of the first evaluation task (the workers are already up) until no
member waits, and until every message the backlog queued is out of the queued state.
"""

import argparse
import random
import time
from decimal import Decimal

from .common import SCALE, django_setup, main_db_url, result_write, say, service_env
from .procs import Proc, redis_reset, stop_all, worker_start


def backlog_record(count: int, members: int) -> float:
    """Record `count` orders for random known members, through the service the API calls;
    nothing evaluates them yet. Returns the orders recorded per second."""
    from django.utils import timezone

    from orders.services import order_record

    rng = random.Random()
    run = f"E{int(time.time())}"
    started = time.perf_counter()
    for n in range(count):
        order_record(
            external_id=f"{run}-{n}",
            member=f"B-{rng.randrange(members)}",
            amount=Decimal(f"{rng.lognormvariate(5, 1):.2f}"),
            currency="CNY",
            placed_at=timezone.now(),
        )
        if (n + 1) % 5000 == 0:
            say(f"  {n + 1:,} of {count:,} recorded")
    return count / (time.perf_counter() - started)


def drain(concurrency: int, backlog: int) -> dict:
    from django.utils import timezone

    from members.models import Member
    from notifications.models import Notification
    from rules.models import RuleFiring

    from .drain import anyone_waiting, kick, members_waiting, messages_queued, settle, wait_for

    settle("before a fresh backlog")
    members = Member.objects.filter(external_id__startswith="B-").count()
    say(f"  Recording a backlog of {backlog:,} orders for random known members…")
    record_rate = backlog_record(backlog, members)
    waiting = members_waiting()
    redis_reset()  # the tasks recording published: the timed run publishes its own
    env = service_env(main_db_url())
    procs: list[Proc] = []
    try:
        procs.append(worker_start("messages", 1, env))
        procs.append(worker_start("evaluations", concurrency, env))
        say(f"  Draining {backlog:,} orders ({waiting:,} members) with {concurrency} process(es)…")
        since = timezone.now()
        started = time.monotonic()
        kick()
        timeout = max(300.0, backlog / 10)
        evaluated = wait_for(lambda: not anyone_waiting(), timeout, procs)
        if evaluated is None:
            raise RuntimeError(
                f"{members_waiting():,} members still wait after {timeout:.0f} s:\n"
                + "\n".join(proc.log_tail(5) for proc in procs)
            )
        delivered = wait_for(lambda: not messages_queued(since), 300, procs)
        rss = {proc.name: proc.peak_rss() for proc in procs}
    finally:
        stop_all(procs)
        redis_reset()
    firings = RuleFiring.objects.filter(fired_at__gte=since).count()
    messages = Notification.objects.filter(created_at__gte=since)
    result = {
        "concurrency": concurrency,
        "orders": backlog,
        "members": waiting,
        "record_rate": record_rate,
        "eval_seconds": evaluated - started,
        "eval_rate": backlog / (evaluated - started),
        "delivered_seconds": delivered - started if delivered else None,
        "delivered_rate": backlog / (delivered - started) if delivered else None,
        "firings": firings,
        "messages": messages.count(),
        "messages_sent": messages.filter(status=Notification.Status.SENT).count(),
        "rss": rss,
    }
    say(
        f"  {concurrency} process(es): {result['eval_rate']:,.0f} orders/s evaluated, "
        f"{firings / backlog:.2f} firings and {result['messages'] / backlog:.3f} messages "
        "per order"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=SCALE.backlog)
    parser.add_argument("--out")
    args = parser.parse_args()
    django_setup(main_db_url())
    result_write(args.out, drain(args.concurrency, args.backlog))


if __name__ == "__main__":
    main()
