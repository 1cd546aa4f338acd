"""Running wrk against a URL and reading its figures."""

import re
import subprocess
from pathlib import Path

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk_run(
    url: str, script: Path, seconds: int, env: dict[str, str], connections: int = 8
) -> dict:
    """wrk -t2 -c`connections` (the baseline's own settings) for `seconds`: requests/s,
    p50 and p99 in ms, and how many answers were not 2xx/3xx."""
    done = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=script.parent,
    )
    return wrk_parse(done.stdout)


def wrk_parse(text: str) -> dict:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rate:
        raise RuntimeError(f"wrk printed no rate:\n{text}")
    result = {"rate": float(rate.group(1)), "non_2xx": 0, "errors": 0}
    for name, percent in (("p50", "50"), ("p99", "99")):
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        result[name] = float(found.group(1)) * UNITS[found.group(2)] if found else None
    if found := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        result["non_2xx"] = int(found.group(1))
    if found := re.search(r"Socket errors:(.*)", text):
        result["errors"] = sum(int(n) for n in re.findall(r"\d+", found.group(1)))
    return result
