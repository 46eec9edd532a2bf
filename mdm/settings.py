"""Settings for the hub. Everything comes from environment variables (see .env.example).

With nothing set, the hub runs on embedded SQLite with Celery tasks executed eagerly in-process,
which is what the demo uses. Production sets DATABASE_URL (PostgreSQL), REDIS_URL and SECRET_KEY.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from .env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MDM_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
_INSECURE_KEY = "insecure-development-key-change-me"
SECRET_KEY = env_str("SECRET_KEY", _INSECURE_KEY)
if SECRET_KEY == _INSECURE_KEY and not DEBUG and env_bool("MDM_PRODUCTION", False):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when MDM_PRODUCTION=true")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "stewardship.sites.MdmAdminConfig",  # django.contrib.admin with the stewardship workbench (admin.site)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "simple_history",
    "canonical",
    "connectors",
    "stewardship",
]

MIDDLEWARE = [
    "connectors.ops.metrics.ApiLatencyMiddleware",  # API latency histogram for /metrics
    "django.middleware.security.SecurityMiddleware",
    "mdm.middleware.RefuseNulMiddleware",  # a NUL in a query string or form field: 400, before any view
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "canonical.audit.AuditContextMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "mdm.urls"
SESSION_ENGINE = "mdm.sessions"  # Django's database sessions, refusing a cookie that cannot be a key
WSGI_APPLICATION = "mdm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "mdm" / "templates"],
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

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'mdm.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Every transaction takes SQLite's write lock at its start, so a second writer (the threaded dev server, a
    # webhook beside a steward) waits for it, up to the timeout, instead of failing with "database is locked"
    # when both had read first (tests/test_sqlite_concurrency.py).
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis as the broker when REDIS_URL is set, otherwise tasks run eagerly in-process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL) or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not (env_str("CELERY_BROKER_URL") or REDIS_URL))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 900)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE: dict = {}
# A broker outage must not lose work in flight: cancel running tasks on connection loss (acks_late redelivers).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Connectors (outbox relay, pulls, webhooks). Seconds unless named otherwise.
MDM_RELAY_INTERVAL = env_float("MDM_RELAY_INTERVAL", 2)
MDM_PULL_INTERVAL = env_float("MDM_PULL_INTERVAL", 60)
MDM_DELIVERY_LEASE_SECONDS = env_float("MDM_DELIVERY_LEASE_SECONDS", 60)
MDM_DELIVERY_MAX_ATTEMPTS = env_int("MDM_DELIVERY_MAX_ATTEMPTS", 10)
MDM_RETRY_BASE_SECONDS = env_float("MDM_RETRY_BASE_SECONDS", 1)
MDM_RETRY_CAP_SECONDS = env_float("MDM_RETRY_CAP_SECONDS", 300)
MDM_PULL_OVERLAP_SECONDS = env_float("MDM_PULL_OVERLAP_SECONDS", 120)
MDM_HTTP_TIMEOUT = env_float("MDM_HTTP_TIMEOUT", 10)
MDM_RELAY_BATCH_SIZE = env_int("MDM_RELAY_BATCH_SIZE", 50)
MDM_RELAY_MAX_SECONDS = env_float("MDM_RELAY_MAX_SECONDS", 30)
CELERY_BEAT_SCHEDULE.update(
    {
        "connectors-relay": {"task": "connectors.relay_run", "schedule": MDM_RELAY_INTERVAL},
        "connectors-pulls": {"task": "connectors.pulls_due", "schedule": MDM_PULL_INTERVAL},
        "connectors-webhooks-sweep": {"task": "connectors.webhooks_sweep", "schedule": 60.0},
    }
)
# Reconciliation (nightly, at MDM_RECONCILE_HOUR:30 UTC) and the worker heartbeat that /health reads.
MDM_RECONCILE_HOUR = env_int("MDM_RECONCILE_HOUR", 2)
MDM_HEARTBEAT_INTERVAL = env_float("MDM_HEARTBEAT_INTERVAL", 30)
MDM_HEARTBEAT_MAX_AGE = env_float("MDM_HEARTBEAT_MAX_AGE", 180)
MDM_METRICS_TOKEN = env_str("MDM_METRICS_TOKEN", "")  # set: /metrics needs "Authorization: Bearer <token>"
CELERY_BEAT_SCHEDULE.update(
    {
        "connectors-reconcile-nightly": {
            "task": "connectors.reconcile_all",
            "schedule": crontab(hour=MDM_RECONCILE_HOUR, minute=30),
        },
        "connectors-heartbeat": {"task": "connectors.heartbeat", "schedule": MDM_HEARTBEAT_INTERVAL},
    }
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "canonical.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["canonical.api.permissions.HasScope"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "canonical.api.negotiation.RememberingContentNegotiation",
    "DEFAULT_THROTTLE_CLASSES": ["canonical.api.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"client": env_str("API_THROTTLE_RATE", "6000/min")},
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "canonical.api.errors.exception_handler",
    # every JSON body the API reads goes through the hub's parser: no float (decimals stay exact), no NaN, no NUL or
    # lone surrogate, a size cap, and nesting too deep for json is a 400 (DRF's own parser let RecursionError out)
    "DEFAULT_PARSER_CLASSES": [
        "canonical.api.parsers.DecimalJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
# The largest request body the API reads (bytes): a bigger one is answered 413. Django's own cap on a body read
# into memory is the same, so the API's answer is the one given (Django's default, 2.5 MiB, raised a 500 from
# inside DRF for a valid batch of 1,000 records).
MDM_API_MAX_BODY_BYTES = env_int("MDM_API_MAX_BODY_BYTES", 20 * 1024 * 1024)
if MDM_API_MAX_BODY_BYTES < 64 * 1024:  # the admin's and the workbench's forms are read under the same cap
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"MDM_API_MAX_BODY_BYTES={MDM_API_MAX_BODY_BYTES} must be at least 65536 (64 KiB): the admin's and the "
        "steward screens' forms are read under the same cap"
    )
DATA_UPLOAD_MAX_MEMORY_SIZE = MDM_API_MAX_BODY_BYTES
# The reason on a history row is the steward's or caller's own words (notes up to 2,000 characters): text, not
# simple-history's varchar(100), which refused a longer reason with a database error after the change was made.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
# How long a web process remembers an authenticated API key (seconds) before reading its client again: the most
# a revocation made elsewhere waits to take effect (the revoking process forgets the key at once); 0 = never.
MDM_API_CLIENT_CACHE_SECONDS = env_float("MDM_API_CLIENT_CACHE_SECONDS", 5)
# PAGE_SIZE is the default for per-view pagination classes; there is deliberately no global one.
SILENCED_SYSTEM_CHECKS = ["rest_framework.W001"]

SPECTACULAR_SETTINGS = {
    "TITLE": "Master data hub API",
    "DESCRIPTION": "Golden records for customers, legal entities, contracts, projects, resources and rate cards; "
    "ingest from owning systems; cross-reference resolution; audit history.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"GoldenStatusEnum": "canonical.models.base.GoldenStatus"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # JSON lines with the correlation id (LOG_FORMAT=text for plain lines); see connectors/ops/logging.py.
    "formatters": {
        "json": {"()": "connectors.ops.logging.JsonFormatter"},
        "text": {"format": "%(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": env_str("LOG_FORMAT", "json")}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}

# The hub's own knobs.
MDM_INGEST_BATCH_SIZE = env_int("MDM_INGEST_BATCH_SIZE", 500)
# Records per transaction of `ingest --bulk` (canonical/services/bulk.py; inside a batch it still works in chunks of
# 500). At 100,000 records, batches of 2,000 were faster than of 500 in five of six pairs of runs made in turn
# (CLI ingest 506 -> 550 records/s in the medians of two pairs; deduplication 174.2 -> 166.6 s in four, one of them
# 2 % slower; the same decisions and counts; docs/benchmarks.md); 5,000 was not consistently faster than 2,000;
# at 20,000 records no difference showed. Why was not found. Memory grows with the batch, not with the file.
MDM_BULK_BATCH_SIZE = env_int("MDM_BULK_BATCH_SIZE", 2000)
# `ingest --bulk` on PostgreSQL matches in a second process beside the one that writes (canonical/services/
# pipeline.py: the same results and end state on two cores); off with MDM_BULK_PIPELINE=false. Its records per
# transaction: at the end of each the matcher waits for the writer to catch up and commit, and the writer for the
# matcher to start again, so they are larger (98,599 customers in three files: 146.7 s in batches of 10,000,
# 126.6 s of 30,000; docs/benchmarks.md). The matcher holds what the transaction wrote so far in memory: with
# 50,000 and no re-reads within a batch (below) the 100,000-row CLI benchmark's matcher peaked at ~680 MiB (1,543
# records/s), with 25,000 and re-reads every 2,000 at ~500 MiB (1,182 records/s; docs/benchmarks.md, 29 Nov).
MDM_BULK_PIPELINE = env_bool("MDM_BULK_PIPELINE", True)
MDM_PIPELINE_BATCH_SIZE = env_int("MDM_PIPELINE_BATCH_SIZE", 50000)
# Records after which the pipelined matcher reads the database again rather than keep what it read in the batch:
# lower keeps its memory flatter, at CPU (each re-read reads the batch's candidates from the database again, and a
# candidate read from the database costs the matcher more than one it holds); by default not within a batch.
MDM_PIPELINE_FORGET_EVERY = env_int("MDM_PIPELINE_FORGET_EVERY", 50000)
for _name in ("MDM_INGEST_BATCH_SIZE", "MDM_BULK_BATCH_SIZE", "MDM_PIPELINE_BATCH_SIZE", "MDM_PIPELINE_FORGET_EVERY"):
    if globals()[_name] < 1:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"{_name}={globals()[_name]} must be at least 1 (records per transaction)")
# The fuzzy matcher (blocking index + Fellegi-Sunter scoring with explanations) by default; the deterministic
# one (identifiers only) stays available: MDM_MATCHER=canonical.matching.deterministic.DeterministicMatcher
MDM_MATCHER = env_str("MDM_MATCHER", "canonical.matching.fuzzy.FuzzyMatcher")
# Candidates' prepared features the matcher keeps per process, filled only as candidates are met: the most recently
# used as they are (MDM_MATCH_FEATURE_CACHE_HOT, ~2.4 KiB each: 50,000 is up to ~120 MiB; at least 1), then more
# of them packed (pickled) behind those (MDM_MATCH_FEATURE_CACHE, ~0.8 KiB each: 200,000 is up to ~160 MiB; 0 =
# none, each candidate past the first tier is prepared again). A packed entry costs more to use than its unpacking:
# a 98,599-record deduplication spent ~18 s more CPU with 10,000 as they are than with 50,000, and ~120 MiB less
# peak RSS (docs/benchmarks.md). Each process that matches holds its own: a web worker can take far fewer.
MDM_MATCH_FEATURE_CACHE_HOT = max(1, env_int("MDM_MATCH_FEATURE_CACHE_HOT", 50_000))
MDM_MATCH_FEATURE_CACHE = env_int("MDM_MATCH_FEATURE_CACHE", 200_000)
