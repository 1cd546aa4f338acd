"""Importing a business's members and order history: writes a members CSV and an orders
CSV of the given size (phones, tiers, opening points, tags, consents; orders over two
years, 1% refunded), then imports both into a fresh database through the commands'
own code, and prints the time and the process's peak memory of each.

    .venv/bin/python -m bench.imports --members 1000000 --orders 10000000 [--out result.json]

Target (issue 12): 1,000,000 members and 10,000,000 orders in < 15 minutes, < 500 MB.
"""

import argparse
import csv
import random
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from .common import PG_SERVER, database_ensure, django_setup, label, result_write, say

TARGET_SECONDS, TARGET_MB = 15 * 60, 500


def write_files(folder: Path, members: int, orders: int) -> tuple[Path, Path]:
    rng = random.Random(12)
    start = datetime(2024, 12, 1)
    members_path, orders_path = folder / "members.csv", folder / "orders.csv"
    with members_path.open("w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["external_id", "name", "phone", "joined_at", "tier", "points",
                      "points_expire_at", "tags", "consent_sms"])  # fmt: skip
        for n in range(members):
            out.writerow([f"M{n}", f"会员{n}", f"139{n:08d}", f"2023-{1 + n % 12:02d}-01",
                          rng.choice(["", "", "silver"]), rng.randint(0, 5000), "2030-12-31",
                          "vip" if n % 10 == 0 else "", rng.choice(["是", "否"])])  # fmt: skip
    with orders_path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["external_id", "member", "amount", "placed_at", "refunded_amount"])
        for n in range(orders):
            amount = round(rng.lognormvariate(5, 1), 2)
            placed = start + timedelta(minutes=rng.randint(0, 700 * 24 * 60))
            refunded = f"{amount / 2:.2f}" if n % 100 == 0 else ""
            out.writerow([f"SO{n}", f"M{rng.randrange(members)}", f"{amount:.2f}",
                          placed.isoformat(sep=" ", timespec="minutes"), refunded])  # fmt: skip
    return members_path, orders_path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--out")
    args = parser.parse_args()
    url = f"{PG_SERVER}/tierflow_bench_imports_{label(args.members)}_{label(args.orders)}"
    database_ensure(url, recreate=True)
    django_setup(url)
    from django.core.management import call_command

    from imports.members import MembersImport
    from imports.orders import OrdersImport
    from imports.runner import import_run
    from rules.programme.load import programme_load

    call_command("migrate", verbosity=0)
    seed = Path(__file__).parent.parent / "rules" / "programmes" / "seed.yaml"
    programme_load(seed.read_text(encoding="utf-8"))
    result = {"members": args.members, "orders": args.orders}
    with tempfile.TemporaryDirectory(prefix="tierflow-import-") as folder:
        say(f"Writing {args.members:,} members and {args.orders:,} orders as CSV…")
        members_path, orders_path = write_files(Path(folder), args.members, args.orders)
        for name, importer, path in (
            ("members", MembersImport(), members_path),
            ("orders", OrdersImport(first_load=True), orders_path),
        ):
            say(f"Importing {name} ({path.stat().st_size / 1e6:.0f} MB)…")
            started = time.perf_counter()
            report = import_run(importer, path)
            seconds = time.perf_counter() - started
            result[f"{name}_seconds"] = seconds
            say(f"  {report.lines()[0]} {seconds:.1f} s, peak {peak_mb():.0f} MB")
    result["peak_mb"] = peak_mb()
    total = result["members_seconds"] + result["orders_seconds"]
    print(f"\nimport benchmark: {args.members:,} members, {args.orders:,} orders\n")
    print("| step | seconds | target | met |\n| --- | --- | --- | --- |")
    print(f"| members | {result['members_seconds']:.1f} | | |")
    print(f"| orders (with the totals recomputed) | {result['orders_seconds']:.1f} | | |")
    # The targets are for a million members and ten million orders.
    full = args.members >= 1_000_000 and args.orders >= 10_000_000
    met = ("yes" if total < TARGET_SECONDS else "**NO**") if full else "(a smaller run)"
    print(f"| both | {total:.1f} | < {TARGET_SECONDS} at 1M/10M | {met} |")
    mb_met = ("yes" if result["peak_mb"] < TARGET_MB else "**NO**") if full else "(smaller)"
    print(f"| peak memory (MB) | {result['peak_mb']:.0f} | < {TARGET_MB} | {mb_met} |")
    result_write(args.out, result)


if __name__ == "__main__":
    main()
