"""Settings, all from the environment (a `.env` file in the project root is read too).

Unset, everything falls back to the embedded default: SQLite and tasks run in-process.
Production sets DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis); see README.
"""

from datetime import time
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # never overrides variables already set

DEBUG = env.bool("DEBUG", default=False)
# No default on purpose: a production process without a secret must not start.
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "django_celery_beat",
    "core",
    "members",
    "orders",
    "benefits",
    "notifications",
    "rules",
    "profiles",
    "reports",
    "imports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# What the API (under /api/) runs through instead (config.wsgi): it needs none of the
# browser's sessions, cookies, CSRF or messages.
API_MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent demo requests queue up
    # instead of failing with "database is locked" when a reader upgrades to a writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # No health-check query per request: a connection the database dropped fails its one
    # request with a 503 the ERP retries (core.api), and Django then discards it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env("LANGUAGE_CODE", default="en-us")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "reports.finders.PlotlyFinder",  # plotly.js from its package, for the reports' charts
]

# --- API ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.auth.HasApiKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_standardized_errors.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
}
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "core.api.ExceptionHandler",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tierflow API",
    "DESCRIPTION": "Orders in; tiers, coupons, points and messages out.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        f"{kind}ErrorEnum": f"drf_standardized_errors.openapi_serializers.{kind}ErrorEnum.choices"
        for kind in ("Validation", "Client", "Server")
    },
    # drf-standardized-errors' copy of spectacular's enum hook, in its place: it leaves out
    # the error components, whose "attr" and "code" choices differ per endpoint by design.
    "POSTPROCESSING_HOOKS": ["drf_standardized_errors.openapi_hooks.postprocess_schema_enums"],
}

# --- Business settings -------------------------------------------------------------------

TIERFLOW_CURRENCY = env("TIERFLOW_CURRENCY", default="CNY")
# How long a process trusts an API key it checked: a revoked key is refused within this.
TIERFLOW_API_KEY_CACHE_SECONDS = env.int("TIERFLOW_API_KEY_CACHE_SECONDS", default=10)
# Orders above this are refused as input errors, not recorded (a mistyped amount would
# otherwise move a member to the top tier).
TIERFLOW_MAX_ORDER_AMOUNT = Decimal(env("TIERFLOW_MAX_ORDER_AMOUNT", default="1000000"))
# What one point is worth in money, for the reports' liability figures (0.01: 100 points = 1 yuan).
TIERFLOW_POINT_VALUE = Decimal(env("TIERFLOW_POINT_VALUE", default="0.01"))
# Who gets the weekly and monthly report summaries (comma-separated e-mail addresses).
TIERFLOW_REPORT_RECIPIENTS = env.list("TIERFLOW_REPORT_RECIPIENTS", default=[])
# Where members exports asked for in the admin are written, and how long they are kept.
TIERFLOW_EXPORTS_DIR = Path(env("TIERFLOW_EXPORTS_DIR", default=str(BASE_DIR / "exports")))
TIERFLOW_EXPORT_KEEP_HOURS = env.int("TIERFLOW_EXPORT_KEEP_HOURS", default=24)
# Files uploaded to the admin's import pages, kept for the dry run and the import.
TIERFLOW_IMPORTS_DIR = Path(env("TIERFLOW_IMPORTS_DIR", default=str(BASE_DIR / "import-files")))
# The reports' roll-up covers rows recorded up to this many seconds before it runs: a
# transaction still open that long would otherwise commit rows behind its mark.
TIERFLOW_REPORTS_ROLLUP_LAG_SECONDS = env.int("TIERFLOW_REPORTS_ROLLUP_LAG_SECONDS", default=60)
# Orders still unevaluated this long after they were recorded are re-enqueued by the sweeper.
TIERFLOW_PENDING_GRACE_SECONDS = env.int("TIERFLOW_PENDING_GRACE_SECONDS", default=60)
# How many pending orders (or messages) one sweeper run re-publishes at most.
TIERFLOW_SWEEP_BATCH = env.int("TIERFLOW_SWEEP_BATCH", default=1000)
# Members one evaluation transaction takes at most: at low load a batch is one event;
# under load batches grow to this, and each member's row stays locked until it commits.
TIERFLOW_EVALUATION_BATCH = env.int("TIERFLOW_EVALUATION_BATCH", default=100)
# An evaluation task works batch after batch for about this long, then hands over.
TIERFLOW_EVALUATION_DRAIN_SECONDS = env.float("TIERFLOW_EVALUATION_DRAIN_SECONDS", default=20.0)
# Provider per notification channel: "console" logs and marks the message sent; "http"
# POSTs the JSON event, signed, to the webhook URL.
# Real providers: "aliyun" or "twilio" (sms), "fcm" (push), "smtp" (email); settings below.
TIERFLOW_NOTIFICATION_PROVIDERS = {
    "sms": env("TIERFLOW_SMS_PROVIDER", default="console"),
    "push": env("TIERFLOW_PUSH_PROVIDER", default="console"),
    "email": env("TIERFLOW_EMAIL_PROVIDER", default="console"),
    "webhook": env("TIERFLOW_WEBHOOK_PROVIDER", default="http"),
}
# Webhook events are signed with this secret (HMAC-SHA256); receivers check the signature.
TIERFLOW_WEBHOOK_SECRET = env("TIERFLOW_WEBHOOK_SECRET", default="")
# Where webhook-channel message templates post (rule webhook actions name their own URL).
TIERFLOW_WEBHOOK_URL = env("TIERFLOW_WEBHOOK_URL", default="")
TIERFLOW_DELIVERY_MAX_ATTEMPTS = env.int("TIERFLOW_DELIVERY_MAX_ATTEMPTS", default=6)
# Messages saved together (a batch's upgrades, a day's lapses) are published for delivery
# this many to a task.
TIERFLOW_DELIVERY_CHUNK = env.int("TIERFLOW_DELIVERY_CHUNK", default=50)
TIERFLOW_DELIVERY_BACKOFF_SECONDS = env.float("TIERFLOW_DELIVERY_BACKOFF_SECONDS", default=30.0)
TIERFLOW_DELIVERY_BACKOFF_MAX_SECONDS = env.float(
    "TIERFLOW_DELIVERY_BACKOFF_MAX_SECONDS", default=1800.0
)


def _quiet_hours(text: str) -> tuple[time, time] | None:
    """ "21:00-09:00" -> (start, end), in TIME_ZONE; "" -> no quiet hours."""
    if not text.strip():
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"TIERFLOW_QUIET_HOURS: expected HH:MM-HH:MM, got {text!r}"
        ) from exc
    return (start, end) if start != end else None


# Messages (not webhooks) due in this window wait until it ends.
TIERFLOW_QUIET_HOURS = _quiet_hours(env("TIERFLOW_QUIET_HOURS", default="21:00-09:00"))
# Marketing messages one member may get per day (0: no cap).
TIERFLOW_MARKETING_DAILY_CAP = env.int("TIERFLOW_MARKETING_DAILY_CAP", default=2)

# --- Notification providers and their callbacks (README: Providers) -----------------------

# This deployment's public address (https://members.example.com), for the delivery
# callbacks providers call; Twilio signs the full URL, so it must be exactly what they use.
TIERFLOW_PUBLIC_URL = env("TIERFLOW_PUBLIC_URL", default="")
# Shared secret in the Aliyun receipt URL (?token=...); empty: receipts are refused.
TIERFLOW_CALLBACK_TOKEN = env("TIERFLOW_CALLBACK_TOKEN", default="")
# Aliyun SMS (TIERFLOW_SMS_PROVIDER=aliyun). The approved template is "${content}": the
# whole rendered text goes in as that one parameter.
TIERFLOW_ALIYUN_ACCESS_KEY_ID = env("TIERFLOW_ALIYUN_ACCESS_KEY_ID", default="")
TIERFLOW_ALIYUN_ACCESS_KEY_SECRET = env("TIERFLOW_ALIYUN_ACCESS_KEY_SECRET", default="")
TIERFLOW_ALIYUN_SMS_SIGN_NAME = env("TIERFLOW_ALIYUN_SMS_SIGN_NAME", default="")
TIERFLOW_ALIYUN_SMS_TEMPLATE_CODE = env("TIERFLOW_ALIYUN_SMS_TEMPLATE_CODE", default="")
TIERFLOW_ALIYUN_SMS_TEMPLATE_PARAM = env("TIERFLOW_ALIYUN_SMS_TEMPLATE_PARAM", default="content")
TIERFLOW_ALIYUN_SMS_ENDPOINT = env(
    "TIERFLOW_ALIYUN_SMS_ENDPOINT", default="https://dysmsapi.aliyuncs.com/"
)
# Twilio SMS (TIERFLOW_SMS_PROVIDER=twilio). FROM: a number (+1…) or a Messaging Service
# sid (MG…).
TIERFLOW_TWILIO_ACCOUNT_SID = env("TIERFLOW_TWILIO_ACCOUNT_SID", default="")
TIERFLOW_TWILIO_AUTH_TOKEN = env("TIERFLOW_TWILIO_AUTH_TOKEN", default="")
TIERFLOW_TWILIO_FROM = env("TIERFLOW_TWILIO_FROM", default="")
TIERFLOW_TWILIO_API_BASE = env("TIERFLOW_TWILIO_API_BASE", default="https://api.twilio.com")
# Put in front of phone numbers stored without "+" where E.164 is required (Twilio).
TIERFLOW_SMS_DEFAULT_COUNTRY_CODE = env("TIERFLOW_SMS_DEFAULT_COUNTRY_CODE", default="86")
# FCM push (TIERFLOW_PUSH_PROVIDER=fcm): the service-account key's JSON, or its file's path.
TIERFLOW_FCM_CREDENTIALS = env("TIERFLOW_FCM_CREDENTIALS", default="")
TIERFLOW_FCM_PROJECT_ID = env("TIERFLOW_FCM_PROJECT_ID", default="")  # default: the key's
TIERFLOW_FCM_API_BASE = env("TIERFLOW_FCM_API_BASE", default="https://fcm.googleapis.com")
# Titles and subjects for messages whose template has no "Subject: ..." first line.
TIERFLOW_PUSH_TITLE = env("TIERFLOW_PUSH_TITLE", default="")
TIERFLOW_EMAIL_SUBJECT = env("TIERFLOW_EMAIL_SUBJECT", default="会员通知")
# E-mail (TIERFLOW_EMAIL_PROVIDER=smtp) goes through Django's backend with these.
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
# Without a timeout a silent SMTP server would hold a worker forever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="tierflow@localhost")

# --- Celery ------------------------------------------------------------------------------

# Unset broker: the embedded default, tasks run in-process right after the commit.
IN_PROCESS_BROKER = "memory://localhost/"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or IN_PROCESS_BROKER
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == IN_PROCESS_BROKER
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# At-least-once: a task whose worker dies is redelivered, so every task is idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
# Keep Django's LOGGING (and its personal-data filter) in workers too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Redelivery of unacked tasks happens after visibility_timeout: well above the time limit.
CELERY_VISIBILITY_TIMEOUT = 3600
# Publishing must not hang an API request when Redis is down or hung (accepting and never
# answering): short socket timeouts (Redis answers a publish in a millisecond; the
# workers' BRPOP is read by the event loop, not bound by them), a quick retry, then give
# up; the order stays "pending evaluation" and the sweeper enqueues it later.
BROKER_SOCKET_TIMEOUT = env.float("BROKER_SOCKET_TIMEOUT", default=0.25)
_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "socket_connect_timeout": BROKER_SOCKET_TIMEOUT,
    "socket_timeout": BROKER_SOCKET_TIMEOUT,
    **_PUBLISH_RETRY,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = _PUBLISH_RETRY
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Three queues, each with workers of its own, so that none waits behind another's
# backlog: the rules' evaluations, message deliveries, and operators' and the daily
# job's background work (the default). Each sweeper runs on the queue it sweeps for.
TIERFLOW_QUEUES = ("evaluations", "messages", "jobs")
CELERY_TASK_DEFAULT_QUEUE = "jobs"
CELERY_TASK_ROUTES = {
    "rules.tasks.evaluate_waiting": {"queue": "evaluations"},
    "rules.tasks.evaluate": {"queue": "evaluations"},
    "rules.tasks.sweep_pending": {"queue": "evaluations"},
    "notifications.tasks.*": {"queue": "messages"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sweep-pending-evaluations": {"task": "rules.tasks.sweep_pending", "schedule": 60.0},
    "sweep-queued-notifications": {
        "task": "notifications.tasks.sweep_queued_notifications",
        "schedule": 60.0,
    },
    "sweep-coupon-issue-jobs": {"task": "benefits.tasks.sweep_coupon_issue_jobs", "schedule": 60.0},
    "sweep-rule-jobs": {"task": "rules.tasks.sweep_rule_jobs", "schedule": 60.0},
    # Clock triggers (birthdays, lapsing tiers…) for the day, early each morning local time.
    "daily": {"task": "rules.tasks.run_daily", "schedule": crontab(hour=0, minute=30)},
    # Members exports' files deleted once kept long enough.
    "sweep-members-exports": {"task": "reports.tasks.sweep_members_exports", "schedule": 3600.0},
    "sweep-imports": {"task": "imports.tasks.sweep_imports", "schedule": 60.0},
    # The reports' per-bucket figures brought up to date with what was recorded since.
    "reports-rollup": {"task": "reports.tasks.rollup", "schedule": 300.0},
    # The reports' summaries, e-mailed to TIERFLOW_REPORT_RECIPIENTS (none: nothing sent).
    "weekly-summary": {
        "task": "reports.tasks.send_summary",
        "schedule": crontab(day_of_week=1, hour=7, minute=0),
        "args": ("weekly",),
    },
    "monthly-summary": {
        "task": "reports.tasks.send_summary",
        "schedule": crontab(day_of_month=1, hour=7, minute=30),
        "args": ("monthly",),
    },
}

# --- Logging -----------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Safety net for invariant 6: phone numbers and e-mail addresses are masked in every
    # record, whatever code logged them.
    "filters": {"redact_pii": {"()": "core.pii.RedactPiiFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_pii"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # Django's own default handler would log a second copy, without the filter.
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# --- HTTPS ---------------------------------------------------------------------------------
# Behind a proxy that terminates TLS, Django learns the request was HTTPS only from the
# proxy's header; trusted only when there is such a proxy, since without one any client
# could send it.
if env.bool("TIERFLOW_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# The health check answers the load balancer over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
