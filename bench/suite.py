"""The whole benchmark in one run (`make bench`): every part in a process of its own, in
turn, then one table of the figures beside their references and targets, printed and
saved to bench/last_run.txt.

Scale with BENCH_QUICK=1 (a smoke run), BENCH_MEMBERS, BENCH_ORDERS, BENCH_BACKLOG,
BENCH_RATES, BENCH_SECONDS, BENCH_DAILY_MEMBERS; leave parts out with
BENCH_SKIP=references,ingest,evaluate,latency,daily.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import BENCH, DAILY_FRACTIONS, PYTHON, ROOT, SCALE, label, say


def part(module: str, *args: str) -> dict:
    """Run one part; a part that fails is reported in the table, and the others still run."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run([PYTHON, "-m", f"bench.{module}", *args, "--out", out.name], cwd=ROOT)
        if done.returncode:
            say(f"  bench.{module} {' '.join(args)} FAILED (exit {done.returncode}): see above")
            return {"failed": " ".join([module, *args])}
        return json.loads(Path(out.name).read_text(encoding="utf-8"))


def _f(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, reference: float | None) -> str:
    return "-" if not value or not reference else f"{value / reference:.2f}×"


def table(r: dict) -> str:
    rows = [("figure", "tierflow", "reference", "ratio", "target", "met")]
    failed = [got["failed"] for got in _parts(r) if "failed" in got]
    r = {key: got for key, got in r.items() if "failed" not in got}
    r["daily"] = {key: got for key, got in r.get("daily", {}).items() if "failed" not in got}
    ref = r.get("references", {})
    drf = ref.get("bare_drf", {}).get("rate")
    for mode, floor in (("known", 0.8), ("new", 0.6)):
        if got := r.get("ingest", {}).get(mode):
            rows.append(
                (
                    f"ingestion, {mode} members (req/s; p50/p99 ms)",
                    f"{_f(got['rate'])} ({_f(got['p50'], 1)}/{_f(got['p99'], 1)})",
                    f"{_f(drf)} bare DRF",
                    _ratio(got["rate"], drf),
                    f"≥ {floor}×",
                    _met(drf and got["rate"] / drf >= floor),
                )
            )
    for c in (1, 2):
        if got := r.get(f"evaluate_{c}"):
            rows.append(
                (
                    f"evaluation, {c} process(es), backlog (orders/s)",
                    _f(got["eval_rate"]),
                    f"{_f(ref.get('bare_celery_rate'))} no-op tasks/s",
                    _ratio(got["eval_rate"], ref.get("bare_celery_rate")),
                    "≥ 500" if c == 2 else "",
                    _met(got["eval_rate"] >= 500) if c == 2 else "",
                )
            )
    for rate, got in r.get("latency", {}).get("rates", {}).items():
        tier, sms = got["tier"], got["sms_latency"]
        flat = got["tier_p50_last_third"] or 0
        rows.append(
            (
                f"{rate} new-member orders/s: → tier change p50/p95/p99 (ms)",
                "/".join(_f((v or 0) * 1000) for v in tier.values()),
                "",
                "",
                "p99 < 1000" if int(rate) == 100 else "",
                _met((tier["p99"] or 9) < 1 and got["caught_up"]) if int(rate) == 100 else "",
            )
        )
        rows.append(
            (
                f"{rate} new-member orders/s: → SMS queued p50/p95/p99 (ms); lag start→end p50",
                "/".join(_f((v or 0) * 1000) for v in sms.values())
                + f"; {_f((got['tier_p50_first_third'] or 0) * 1000)}→{_f(flat * 1000)}",
                "",
                "",
                "p99 < 1000, flat" if int(rate) == 100 else "",
                _met((sms["p99"] or 9) < 1 and got["caught_up"]) if int(rate) == 100 else "",
            )
        )
    for _, got in sorted(r.get("daily", {}).items()):
        members, fraction = got["members"], got["fraction"]
        limit = 60 if fraction < 0.5 else 600
        rows.append(
            (
                f"daily job, {label(members)} members, {fraction:.0%} due (s; ms per due member)",
                f"{_f(got['seconds'], 1)} ({_f(got.get('ms_per_due'), 2)})",
                "",
                "",
                f"< {limit} s at 1m" if members >= 1_000_000 else "",
                _met(got["seconds"] < limit) if members >= 1_000_000 else "",
            )
        )
    rss = _rss(r)
    if rss:
        web, worker = rss
        rows.append(("peak RSS, web worker (MB)", _f(web), "", "", "< 150", _met(web < 150)))
        rows.append(
            ("peak RSS, Celery worker (MB)", _f(worker), "", "", "< 200", _met(worker < 200))
        )
    if "pgbench_tps" in ref:
        rows.append(
            (
                "raw PostgreSQL, the order's two statements (tx/s)",
                "",
                _f(ref["pgbench_tps"]),
                "",
                "",
                "",
            )
        )
    rows += [(f"FAILED: bench.{name}", "", "", "", "", "NO") for name in failed]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def _parts(r: dict) -> list[dict]:
    return [got for key, got in r.items() if key != "daily"] + list(r.get("daily", {}).values())


def _met(ok: bool | None) -> str:
    return "yes" if ok else "NO"


def _rss(r: dict) -> tuple[float, float] | None:
    """The largest web worker (gunicorn's child) and Celery process seen in any part."""
    web, worker = [], []
    for name in ("ingest", "latency", "evaluate_1", "evaluate_2"):
        for proc, figures in r.get(name, {}).get("rss", {}).items():
            if proc == "web":
                web.append(figures["child"])
            else:
                worker.append(max(figures.values()))
    return (max(web), max(worker)) if web and worker else None


def main() -> None:
    started = time.monotonic()
    skip = SCALE.skip
    results: dict = {}
    say(f"tierflow benchmark{' (quick)' if SCALE.quick else ''} on {os.cpu_count()} cores")
    results["base"] = part("prepare")
    if "failed" in results["base"]:
        raise SystemExit("The base could not be prepared: nothing else can run.")
    if "references" not in skip:
        results["references"] = part("references")
    if "ingest" not in skip:
        results["ingest"] = part("ingest")
    if "evaluate" not in skip:
        for c in (1, 2):
            results[f"evaluate_{c}"] = part("evaluate", "--concurrency", str(c))
    if "latency" not in skip:
        results["latency"] = part("latency")
    if "daily" not in skip:
        results["daily"] = {}
        for members in SCALE.daily_members:
            for fraction in DAILY_FRACTIONS:
                results["daily"][f"{label(members)}-{fraction}"] = part(
                    "daily", "--members", str(members), "--fraction", str(fraction)
                )
    base = results["base"]
    text = "\n".join(
        [
            f"tierflow benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; base {base['members']:,} members, "
            f"{base['orders']:,} orders, {base['rules']} live order rules; "
            f"backlog {SCALE.backlog:,} orders; {SCALE.seconds} s per rate",
            "",
            table(results),
            "",
            f"({(time.monotonic() - started) / 60:.0f} min in all)",
        ]
    )
    print("\n" + text)
    name = "last_run_quick" if SCALE.quick else "last_run"  # a smoke run keeps the real one
    (BENCH / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    (BENCH / f"{name}.json").write_text(json.dumps(results, indent=2, default=str), "utf-8")


if __name__ == "__main__":
    sys.exit(main())
