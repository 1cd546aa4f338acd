"""The evaluation and ingestion base (tierflow_bench): created and filled once (COPY), reused
while its shape holds, with the 50 benchmark rules live and nobody waiting.

    .venv/bin/python -m bench.prepare [--out result.json]
"""

import argparse
import os
import time

from .common import SCALE, database_ensure, django_setup, main_db_url, result_write, say

# Ingestion adds members and orders each run; past this much drift the base is refilled.
DRIFT = 1.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out")
    args = parser.parse_args()
    url = main_db_url()
    django_setup(url)
    from django.core.management import call_command
    from django.db import connection

    from members.models import Member

    from . import fill
    from .drain import settle

    if connection.vendor != "postgresql":
        raise SystemExit("The benchmark runs on PostgreSQL.")
    shape = f"members={SCALE.members} orders={SCALE.orders}"
    call_command("migrate", verbosity=0)
    reason = ""
    if os.environ.get("BENCH_REFILL"):
        reason = "BENCH_REFILL is set"
    elif fill.marker_get("main") != shape:
        reason = "not filled yet" if fill.marker_get("main") is None else "another shape"
    elif Member.objects.count() > SCALE.members * DRIFT:
        reason = "earlier runs' new members"
    filled_in = None
    if reason:
        say(f"Filling {url.rsplit('/', 1)[1]} ({reason}): {shape}")
        connection.close()
        database_ensure(url, recreate=True)
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        fill.main_fill(SCALE.members, SCALE.orders)
        filled_in = time.perf_counter() - started
        fill.marker_set("main", shape)
    else:
        say(f"Reusing {url.rsplit('/', 1)[1]} ({shape}).")
    live = fill.rules_install(50)
    settle("left by an earlier run")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM orders_order")
        (orders,) = cursor.fetchone()
    result = {
        "database": url.rsplit("/", 1)[1],
        "members": Member.objects.count(),
        "orders": orders,
        "rules": live,
        "filled_in": filled_in,
    }
    say(f"Base: {result['members']:,} members, {orders:,} orders, {live} live order rules.")
    result_write(args.out, result)


if __name__ == "__main__":
    main()
