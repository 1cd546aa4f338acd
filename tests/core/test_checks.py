"""The deployment's start-up checks, and the HTTPS settings taken from the environment."""

import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks
from django.db import connection

from config.settings import BASE_DIR

PRODUCTION = {
    "SECRET_KEY": "x" * 60 + "-not-a-real-secret-but-long-and-varied-0123456789",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "tierflow.example.com",
    "DATABASE_URL": "postgres://tierflow@127.0.0.1:5432/tierflow",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "TIERFLOW_BEHIND_TLS_PROXY": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "CI"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def ids() -> set[str]:
    return {message.id for message in run_checks() if message.id.startswith("core.")}


def test_with_debug_off_sqlite_and_in_process_tasks_are_warned_of(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setattr(connection, "vendor", "sqlite")
    monkeypatch.setattr("core.checks.tasks_run_in_process", lambda: True)
    assert ids() == {"core.W001", "core.W002"}


def test_with_debug_off_postgresql_and_a_broker_nothing_is_warned_of(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setattr(connection, "vendor", "postgresql")
    monkeypatch.setattr("core.checks.tasks_run_in_process", lambda: False)
    assert ids() == set()


def test_the_embedded_default_with_debug_on_is_not_warned_of(settings):
    settings.DEBUG = True
    assert ids() == set()


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("behind_proxy", "header"),
    [("false", "None"), ("true", "('HTTP_X_FORWARDED_PROTO', 'https')")],
)
def test_the_proxy_header_is_trusted_only_behind_a_proxy(behind_proxy, header):
    env = {**PRODUCTION, "TIERFLOW_BEHIND_TLS_PROXY": behind_proxy}
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)",
        env=env,
    )
    assert result.stdout.strip().splitlines()[-1] == header, result.stderr
