#!/bin/bash
# The whole benchmark in one run: references, ingestion, evaluation, latency, daily job.
# Needs PostgreSQL and Redis on loopback, wrk and pgbench (see README, Performance).
set -eu
cd "$(dirname "$0")/.."
for tool in wrk pgbench psql; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (Debian: apt-get install wrk postgresql-client)"; exit 1; }
done
exec .venv/bin/python -m bench.suite
