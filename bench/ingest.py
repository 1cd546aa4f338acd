"""The project's order API under wrk through gunicorn with 2 workers, as in production: for
known members of the base, and for new members that the order creates. No worker runs
meanwhile: what is recorded waits and is evaluated, untimed, by the next part's settling.

    .venv/bin/python -m bench.ingest [--out result.json]
"""

import argparse
import time

from .common import BENCH, SCALE, django_setup, main_db_url, result_write, say, service_env
from .procs import redis_reset, web_start
from .wrk import wrk_run


def api_key() -> str:
    from rest_framework_api_key.models import APIKey

    APIKey.objects.filter(name="benchmark").delete()
    _, key = APIKey.objects.create_key(name="benchmark")
    return key


def ingest() -> dict:
    from members.models import Member

    env = service_env(main_db_url())
    env.update(
        BENCH_KEY=api_key(),
        BENCH_MEMBERS=str(Member.objects.filter(external_id__startswith="B-").count()),
    )
    redis_reset()
    web, url = web_start(env, workers=2)
    result = {}
    try:
        for mode in ("known", "new"):
            say(f"Ingestion through gunicorn -w 2, {mode} members, {SCALE.wrk_seconds} s…")
            env.update(BENCH_MODE=mode, BENCH_RUN=f"{mode[0]}{int(time.time())}")
            result[mode] = figures = wrk_run(
                f"{url}/api/v1/orders/", BENCH / "orders.lua", SCALE.wrk_seconds, env
            )
            say(
                f"  {figures['rate']:,.0f} req/s, p50 {figures['p50']:.1f} ms, "
                f"p99 {figures['p99']:.1f} ms, {figures['non_2xx']} not 2xx"
            )
        result["rss"] = {"web": web.peak_rss()}
    finally:
        web.stop()
        redis_reset()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out")
    args = parser.parse_args()
    django_setup(main_db_url())
    result_write(args.out, ingest())


if __name__ == "__main__":
    main()
