"""PrizMed settings: one file, driven by environment variables.

Unset variables fall back to the embedded defaults (SQLite, local files, in-process cache,
channel layer and task runner) so `make run` needs nothing installed; setting DATABASE_URL and
REDIS_URL switches to PostgreSQL and Redis. docs/configuration.md lists every variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext

from core.db_pool import pools_purge_dead_together
from prizmed.env import ConfigError, envbool, envint, envlist, envstr

# Lets `admin.ModelAdmin[Model]` and friends be subscripted at run time, for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("PRIZMED_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)  # the embedded database lives here from the first command on

DEBUG = envbool("DEBUG", False)
_DEV_SECRET = "insecure-development-key-do-not-use-in-production"
SECRET_KEY = envstr("SECRET_KEY", "")
# `make run` generates the key once into the data dir; reading it here lets every later
# `manage.py` command (issue_key, verify_audit_log) run as README shows it, with no export.
_GENERATED_SECRET = DATA_DIR / "secret_key"
if not SECRET_KEY and _GENERATED_SECRET.is_file():
    SECRET_KEY = _GENERATED_SECRET.read_text().strip()
if not SECRET_KEY or SECRET_KEY == _DEV_SECRET:
    if not DEBUG:
        raise ConfigError("SECRET_KEY must be set to a random value when DEBUG is off")
    SECRET_KEY = _DEV_SECRET
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "studies",
    "records",
    "corsheaders",
    "dicomweb",
]

MIDDLEWARE = [
    # Before the key check: a CORS preflight carries no key (core/cors.py does the same for consumers).
    "corsheaders.middleware.CorsMiddleware",
    "accounts.middleware.ApiKeyDjangoMiddleware",  # the ASGI ApiKeyMiddleware's check, for views
    "django.middleware.security.SecurityMiddleware",
    "dashboard.static.ViewerStaticMiddleware",  # WhiteNoise, plus the viewer's build at /viewer/
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "prizmed.urls"
ASGI_APPLICATION = "prizmed.asgi.application"
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


def _databases() -> dict[str, Any]:
    url = envstr("DATABASE_URL", f"sqlite:///{DATA_DIR / 'prizmed.sqlite3'}")
    db: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=envint("DB_CONN_MAX_AGE", 0)))
    test_name = envstr("PRIZMED_TEST_DB_NAME", "test_prizmed")
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # SQLite serves several processes (uvicorn workers, the task runner): WAL lets readers
        # run beside the writer, IMMEDIATE transactions avoid lock-upgrade deadlocks, and the
        # test database is a file so that servers started by the tests see it.
        db["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        test_name = str(DATA_DIR / f"{test_name}.sqlite3")
        # Kept open between requests and tasks unless DB_CONN_MAX_AGE says otherwise: closing
        # SQLite's last connection checkpoints the WAL (~10 ms), which every task then paid.
        db["CONN_MAX_AGE"] = envint("DB_CONN_MAX_AGE", 600)
    elif db["ENGINE"] == "django.db.backends.postgresql" and (pool_size := envint("DB_POOL_MAX_SIZE", 10)) > 0:
        # Every request, and every database call of a consumer, gives its connection back when
        # it ends (the key lookup and the view even run on different threads), and a new
        # connection costs ~5 ms: a per-process pool makes that ~0.
        if db.get("CONN_MAX_AGE"):
            raise ConfigError("DB_CONN_MAX_AGE must be 0 while the connection pool is on (DB_POOL_MAX_SIZE)")
        db["OPTIONS"] = {"pool": {"min_size": 1, "max_size": pool_size, "timeout": 10}}
    db["TEST"] = {"NAME": test_name}
    return {"default": db}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL", "")
# Lets several deployments (or concurrent test runs) share one Redis and broker: it prefixes
# cache keys and channel names and names the task queue.
NAMESPACE = envstr("PRIZMED_NAMESPACE", "prizmed")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": NAMESPACE,
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": NAMESPACE},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis (or any broker URL) in production; without one, tasks run in-process on a
# background thread (see core/tasks.py), through the same task code.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = NAMESPACE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic sweeps; each app adds its entries. Embedded mode runs them in the server process.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {}
# Redis redelivers an unacknowledged task after this many seconds (a SIGKILLed worker's task).
# The key prefix keeps each namespace's queues and unacked-message index apart in a shared Redis,
# so one deployment's (or test run's) redelivery never touches another's tasks.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 300),
    "global_keyprefix": f"{NAMESPACE}:",
}
# Uploads `queued` or `indexing` that no indexing moved for this long lost their task (a broker
# that dropped its queue, a part never sent): the sweep sends it again (studies/index/recovery.py).
# Well above a batch's retries (31 s) and the worst backlog expected; a duplicate is harmless.
INDEX_STALL_SECONDS = envint("INDEX_STALL_SECONDS", 600)
CELERY_BEAT_SCHEDULE["studies.index_stalled"] = {"task": "studies.index_stalled", "schedule": 300}
# Finishes object deletions a crash interrupted between commit and unlink (studies/objects/deletion.py).
CELERY_BEAT_SCHEDULE["studies.sweep_pending_objects"] = {"task": "studies.sweep_pending_objects", "schedule": 300}

PRIZMED_STORAGE_DIR = Path(envstr("PRIZMED_STORAGE_DIR", str(DATA_DIR / "objects"))).resolve()
# --- S3-compatible object storage (issue 15, docs/deploy.md) ---------------------------------
# s3://bucket/prefix stores objects there instead of in PRIZMED_STORAGE_DIR; endpoint, region and
# credentials come from the standard AWS variables (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID...).
PRIZMED_STORAGE_URL = envstr("PRIZMED_STORAGE_URL", "")
if PRIZMED_STORAGE_URL and not PRIZMED_STORAGE_URL.startswith("s3://"):
    raise ConfigError(f"PRIZMED_STORAGE_URL={PRIZMED_STORAGE_URL!r} must be s3://bucket[/prefix]")
# Multipart upload part size: memory per object being written is about twice this (S3 minimum 5 MiB).
PRIZMED_S3_PART_BYTES = max(envint("PRIZMED_S3_PART_BYTES", 8 * 1024 * 1024), 5 * 1024 * 1024)
PRIZMED_S3_TIMEOUT_SECONDS = envint("PRIZMED_S3_TIMEOUT_SECONDS", 10)  # connect, and each read
PRIZMED_S3_MAX_ATTEMPTS = envint("PRIZMED_S3_MAX_ATTEMPTS", 3)  # per request, with backoff
# Path-style addressing (bucket in the path): what MinIO and other self-hosted endpoints need.
PRIZMED_S3_PATH_STYLE = envbool("PRIZMED_S3_PATH_STYLE", bool(envstr("AWS_ENDPOINT_URL", "")))
# --- end S3 object storage --------------------------------------------------------------------
# Test hook: a file holding epoch seconds that replaces the wall clock for rate-limit windows,
# so tests across processes can pin or advance time instead of sleeping.
PRIZMED_CLOCK_FILE = envstr("PRIZMED_CLOCK_FILE", "")
# Chunked upload streams left open (no chunk) this many seconds expire and free their chunks;
# uploads stuck `receiving` as long (their process died) are removed by the same sweep.
PRIZMED_STREAM_TTL = envint("PRIZMED_STREAM_TTL", 24 * 3600)
CELERY_BEAT_SCHEDULE["studies.expire_streams"] = {"task": "studies.expire_streams", "schedule": 600}
# The public base of links the service writes (core/links.py), for a deployment behind a proxy that
# rewrites hosts or paths. Unset: each answer's links follow the request's own scheme, host and
# port; the Endpoint address stored in indexed ImagingStudies is then the same-origin path.
PRIZMED_PUBLIC_URL = envstr("PRIZMED_PUBLIC_URL", "").rstrip("/")

# Record stream (docs/records.md): SSE heartbeat and log re-read intervals, per-key concurrent
# streams, and how much of the event log is kept (days, and events per organization).
# 3 s: under the 5 s read timeout httpx (and so many Python clients) applies by default, with room to spare.
RECORDS_HEARTBEAT_SECONDS = envint("RECORDS_HEARTBEAT_SECONDS", 3)
RECORDS_POLL_SECONDS = envint("RECORDS_POLL_SECONDS", 3)
RECORDS_MAX_STREAMS_PER_KEY = envint("RECORDS_MAX_STREAMS_PER_KEY", 5)
RECORDS_RETENTION_DAYS = envint("RECORDS_RETENTION_DAYS", 30)
RECORDS_RETENTION_EVENTS = envint("RECORDS_RETENTION_EVENTS", 1_000_000)
CELERY_BEAT_SCHEDULE["records.prune_events"] = {"task": "records.prune_events", "schedule": 3600}
# Live record streams at scale (issue 18, records/fanout.py): the events a stream's feed holds
# before the stream must read the log itself (a slow client), which bounds memory per stream.
RECORDS_STREAM_BUFFER_EVENTS = envint("RECORDS_STREAM_BUFFER_EVENTS", 2000)

# DICOMweb (docs/dicomweb.md): how long STOW-RS waits for indexing before answering 202, the
# most QIDO-RS results per answer (and the default limit), and what rendering may decode.
DICOMWEB_STOW_WAIT_SECONDS = envint("DICOMWEB_STOW_WAIT_SECONDS", 30)
DICOMWEB_QIDO_MAX_RESULTS = envint("DICOMWEB_QIDO_MAX_RESULTS", 1000)
DICOMWEB_RENDER_MAX_FRAME_BYTES = envint("DICOMWEB_RENDER_MAX_FRAME_BYTES", 256 * 1024 * 1024)
DICOMWEB_RENDER_MAX_FRAMES = envint("DICOMWEB_RENDER_MAX_FRAMES", 100_000)
# CORS (django-cors-headers, for views and consumers alike: core/cors.py): browser viewers on
# these origins may call the API; a preflight needs no key.
CORS_ALLOWED_ORIGINS = envlist("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/v2/.*$"
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "if-none-match", "range", "x-request-id")
CORS_EXPOSE_HEADERS = (
    "content-range", "content-location", "etag", "location", "repr-digest", "retry-after", "warning",
    "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-request-id",
)  # fmt: skip

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Serve app and package static files without a collectstatic step (admin, Swagger UI).
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasApiKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.problems.drf_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PrizMed API",
    "DESCRIPTION": "Streaming DICOM ingest and FHIR R4 patient records.",
    "VERSION": "2.4.1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v2",
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "prizmed.openapi.add_consumer_paths",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logs.RequestIdFilter"}},
    "formatters": {"json": {"()": "core.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["stderr"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        # uvicorn's own access log lacks the request id; prizmed.access replaces it.
        "uvicorn.access": {"level": "WARNING"},
    },
}

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Dashboard: the embedded OHIF viewer (docs/dashboard.md) ---
# Where `make viewer` unpacks OHIF's prebuilt dist/ (npm @ohif/app, version pinned in the Makefile).
VIEWER_ROOT = Path(envstr("PRIZMED_VIEWER_ROOT", str(BASE_DIR / "build" / "ohif"))).resolve()
# How long opening a study in the viewer grants its session read access to DICOMweb.
VIEWER_ACCESS_SECONDS = envint("PRIZMED_VIEWER_ACCESS_SECONDS", 900)
# Prometheus metrics at /metrics, for a scraper holding this Bearer token; unset: /metrics is off.
# Several processes (uvicorn workers, Celery) also need PROMETHEUS_MULTIPROC_DIR (docs/dashboard.md).
PRIZMED_METRICS_TOKEN = envstr("PRIZMED_METRICS_TOKEN", "")
# Usage per organization (accounts/usage.py): how often each process writes its counts, and how
# long they are kept (the dashboard plots up to 30 days).
USAGE_FLUSH_SECONDS = envint("PRIZMED_USAGE_FLUSH_SECONDS", 5)
USAGE_KEEP_DAYS = envint("PRIZMED_USAGE_KEEP_DAYS", 31)
CELERY_BEAT_SCHEDULE["accounts.prune_usage"] = {"task": "accounts.prune_usage", "schedule": 3600}
# ---- Faults and limits (issue 10, reliability; docs/reliability.md) -------------------------
# Tasks whose loss would lose data go through the transactional outbox (outbox/dispatch.py):
# sent on commit, and again by this sweep while the broker was down.
INSTALLED_APPS = [*INSTALLED_APPS, "outbox"]
OUTBOX_SWEEP_SECONDS = envint("OUTBOX_SWEEP_SECONDS", 15)
OUTBOX_RESEND_AFTER_SECONDS = envint("OUTBOX_RESEND_AFTER_SECONDS", 10)
CELERY_BEAT_SCHEDULE["outbox.sweep"] = {"task": "outbox.sweep", "schedule": OUTBOX_SWEEP_SECONDS}
# A backend that is down is a 503 with this Retry-After (core/backends.py), reached quickly:
# every connection to Redis, the broker and PostgreSQL has a bounded connect (and Redis command)
# time. The rate limiter fails closed: without its Redis counter a request is a 503, never
# unmetered (docs/reliability.md).
BACKEND_RETRY_AFTER_SECONDS = envint("BACKEND_RETRY_AFTER_SECONDS", 5)
REDIS_CONNECT_TIMEOUT_SECONDS = envint("REDIS_CONNECT_TIMEOUT_SECONDS", 2)
REDIS_SOCKET_TIMEOUT_SECONDS = envint("REDIS_SOCKET_TIMEOUT_SECONDS", 5)
DB_CONNECT_TIMEOUT_SECONDS = envint("DB_CONNECT_TIMEOUT_SECONDS", 3)
if REDIS_URL:
    _redis_cache: dict[str, Any] = CACHES["default"]
    _redis_cache["OPTIONS"] = {
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
    }
    _channel_layer: dict[str, Any] = CHANNEL_LAYERS["default"]
    _channel_layer["CONFIG"]["hosts"] = [
        {"address": REDIS_URL, "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS}
    ]
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT_SECONDS
CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"] = REDIS_CONNECT_TIMEOUT_SECONDS
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = DB_CONNECT_TIMEOUT_SECONDS
    if "pool" in DATABASES["default"]["OPTIONS"]:
        # A pooled connection the server has closed (restart, pg_terminate_backend) is checked
        # before use and replaced, not handed to a request that then fails (Django turns
        # CONN_HEALTH_CHECKS into the pool's check); the first dead one has the pool purge the
        # others at once (core/db_pool.py). A database that is down fails a request after this
        # many seconds, not the pool's 10.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        pools_purge_dead_together()
        DATABASES["default"]["OPTIONS"]["pool"]["timeout"] = envint("DB_POOL_TIMEOUT_SECONDS", 3)
# Bounded streams (docs/ingest.md): chunk seqs up to the plan's study size in chunks of at
# least this many bytes; open streams, and bytes held in them, per organization.
STREAMS_MIN_CHUNK_BYTES = envint("STREAMS_MIN_CHUNK_BYTES", 64 * 1024)
STREAMS_MAX_OPEN_PER_ORG = envint("STREAMS_MAX_OPEN_PER_ORG", 100)
STREAMS_MAX_HELD_BYTES_PER_ORG = envint("STREAMS_MAX_HELD_BYTES_PER_ORG", 32 * 1024**3)
# How long the chunk completing a stream waits for a worker to assemble it before answering
# with the upload still `receiving` (studies/ingest/assembly.py); the client follows its link.
STREAMS_ASSEMBLY_WAIT_SECONDS = envint("STREAMS_ASSEMBLY_WAIT_SECONDS", 120)
# HTTP connections (core/http_limits.py, uvicorn --http core.http_limits:LimitedHttpToolsProtocol):
# request head size, header count and time to a complete head; connections per process (under
# the process's file descriptor limit); how long a request body may send nothing.
HTTP_MAX_HEAD_BYTES = envint("HTTP_MAX_HEAD_BYTES", 64 * 1024)
HTTP_MAX_HEADERS = envint("HTTP_MAX_HEADERS", 100)
HTTP_HEAD_TIMEOUT_SECONDS = envint("HTTP_HEAD_TIMEOUT_SECONDS", 10)
HTTP_MAX_CONNECTIONS = envint("HTTP_MAX_CONNECTIONS", 800)
HTTP_BODY_IDLE_TIMEOUT_SECONDS = envint("HTTP_BODY_IDLE_TIMEOUT_SECONDS", 30)
# An upload `receiving` with no sign of life for this long (a live one is touched every
# UPLOAD_HEARTBEAT_SECONDS of body; a stalled one is ended by the body idle timeout) is dead:
# its request id is free for the retry, which discards it (docs/reliability.md).
UPLOAD_HEARTBEAT_SECONDS = envint("UPLOAD_HEARTBEAT_SECONDS", 15)
UPLOAD_STALE_SECONDS = envint("UPLOAD_STALE_SECONDS", 90)
# ---- end of faults and limits ----------------------------------------------------------------
# --- Security: production hardening (issue 10 item 13; docs/security.md) -----------------------
# "Production services" = PostgreSQL (any non-SQLite DATABASE_URL) or REDIS_URL: there DEBUG is
# refused (it leaks settings and tracebacks, and would fall back to the development key) and the
# secret key must be at least 50 characters and look random (Django's own deploy check,
# security.W009; `make run` generates 67). The embedded single-machine mode keeps the existing rule above.
PRODUCTION_SERVICES = DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3" or bool(REDIS_URL)
SECRET_KEY_MIN_LENGTH = 50
if PRODUCTION_SERVICES and DEBUG:
    raise ConfigError("DEBUG must be off when DATABASE_URL (PostgreSQL) or REDIS_URL is set")
if PRODUCTION_SERVICES and len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH:
    raise ConfigError(f"SECRET_KEY must be at least {SECRET_KEY_MIN_LENGTH} characters with production services")
if PRODUCTION_SERVICES and (len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    raise ConfigError("SECRET_KEY must be a random value (at least 5 distinct characters, not Django's insecure one)")
# PRIZMED_HTTPS=1: clients reach the service over HTTPS only (directly or through a TLS proxy):
# plain-HTTP requests to Django views are redirected (health checks exempt), responses carry
# HSTS, and session and CSRF cookies are Secure.
PRIZMED_HTTPS = envbool("PRIZMED_HTTPS", False)
if PRIZMED_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# PRIZMED_PROXY_SSL_HEADER=X-Forwarded-Proto: a request is HTTPS when the TLS-terminating proxy
# in front sets this header to "https". Only set it when that proxy overwrites the header on
# every request; otherwise a client could claim HTTPS itself.
_proxy_ssl_header = envstr("PRIZMED_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
# Requests without a valid key, per client address and minute, before they get 429 instead of
# 401 (a valid key is never refused for them); crossing the limit is audited as a Security Alert.
PRIZMED_AUTH_FAILURES_PER_MINUTE = envint("PRIZMED_AUTH_FAILURES_PER_MINUTE", 60)
# Open SSE streams and WebSockets re-check their key this often (seconds, one query per process):
# a revoked or expired key's connections end within it (accounts/key_watch.py).
PRIZMED_KEY_RECHECK_SECONDS = envint("PRIZMED_KEY_RECHECK_SECONDS", 2)
# A verified key serves a process's new requests without a lookup for this long (seconds; 0: off):
# a change not made through this process (accounts/key_cache.py) reaches its requests within it.
PRIZMED_KEY_CACHE_SECONDS = envint("PRIZMED_KEY_CACHE_SECONDS", 2)
# The audit chain's HMAC key (accounts/audit/log.py, docs/audit.md): kept outside the database,
# so whoever can write the audit table cannot recompute the chain. Required with production
# services (every process must hold the same key); embedded, generated once into the data dir.
AUDIT_KEY_MIN_LENGTH = 32
PRIZMED_AUDIT_KEY = envstr("PRIZMED_AUDIT_KEY", "")
if not PRIZMED_AUDIT_KEY and PRODUCTION_SERVICES:
    raise ConfigError("PRIZMED_AUDIT_KEY must be set with production services (docs/audit.md)")
if not PRIZMED_AUDIT_KEY:
    _audit_key_file = DATA_DIR / "audit_key"
    try:  # O_EXCL: of two processes starting at once, one writes the key and both read it
        with open(os.open(_audit_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as _fh:
            _fh.write(secrets.token_urlsafe(48))
    except FileExistsError:
        pass
    PRIZMED_AUDIT_KEY = _audit_key_file.read_text().strip()
if len(PRIZMED_AUDIT_KEY) < AUDIT_KEY_MIN_LENGTH:
    raise ConfigError(f"PRIZMED_AUDIT_KEY must be at least {AUDIT_KEY_MIN_LENGTH} characters")
# Entries written before the chain was keyed (an upgrade): this many leading entries may carry
# the former unkeyed hash. Record the count outside the database when upgrading; 0 otherwise.
PRIZMED_AUDIT_LEGACY_ENTRIES = envint("PRIZMED_AUDIT_LEGACY_ENTRIES", 0)
# The audit log's head goes to the application log this often (accounts/tasks.py), so removing
# the newest entries shows against a head recorded outside the database (docs/audit.md).
CELERY_BEAT_SCHEDULE["accounts.log_audit_head"] = {
    "task": "accounts.log_audit_head",
    "schedule": envint("PRIZMED_AUDIT_HEAD_LOG_SECONDS", 300),
}
# --- end Security -----------------------------------------------------------------------------

# --- Contract (issue 14) ---
# Issue 14 (contract): API routes authenticate by Bearer key, never by cookie, so Django's CSRF
# check does not apply to them; should it ever refuse one, the refusal is still problem+json.
CSRF_FAILURE_VIEW = "core.problems.csrf_failure"
# A refused WebSocket handshake is the client's error: logged at INFO, not uvicorn's ERROR.
LOGGING["filters"]["refused_handshake"] = {"()": "core.logs.RefusedHandshakeFilter"}  # type: ignore[index]
LOGGING["loggers"]["uvicorn.error"] = {"filters": ["refused_handshake"]}  # type: ignore[index]
# Dashboard dates as 2026-11-29 14:01 (prizmed/formats/): the lists fit 1400 px.
FORMAT_MODULE_PATH = ["prizmed.formats"]
