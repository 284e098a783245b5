"""Stratus settings. Everything that differs between a laptop, a test run and a deployment comes
from the environment; the defaults are the embedded cloud of `make run`."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab  # noqa: F401  (schedules below may use it)
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DATA_DIR = Path(os.environ.get("STRATUS_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data dir."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = DATA_DIR / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("STRATUS_DEBUG", False)
# ALLOWED_HOSTS (the Host of HTTP requests and the Origin of websockets) is set below, once
# STRATUS_PUBLIC_URL and STRATUS_METADATA_URL are known (allowed_hosts()).
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("STRATUS_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "channels",
    "django_celery_beat",
    "apps.core",
    "apps.identity",
    "apps.dashboard",
    "apps.images",
    "apps.networks",
    "apps.compute",
    "apps.volumes",
    "apps.objects",
    "apps.telemetry",
    "apps.orchestration",
]

MIDDLEWARE = [
    "apps.core.servertiming.ServerTimingMiddleware",  # not in the chain unless STRATUS_SERVER_TIMING
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last: a sync-only middleware innermost keeps the whole chain above it sync under ASGI (one thread hop
    # into the request's thread); in the middle it split the chain, and every async-mode middleware outside
    # it hopped between the event loop and the request's thread for each of its process_* (about ten hops
    # a request, half of a port create's time at c=20)
    "apps.core.limits.BodyLimitMiddleware",
]

# The OpenStack clients send both /x and /x/; never redirect them.
APPEND_SLASH = False

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

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
                "apps.dashboard.context.shell",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'stratus.sqlite3'}"),
        # 0: under ASGI every request runs in a context of its own, so a persistent connection is
        # never reused; it lingers until garbage-collected, and load exhausts PostgreSQL's
        # max_connections (bench/token_validation.py showed 60 connections from one worker at c=10).
        conn_max_age=int(os.environ.get("STRATUS_DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg2 with a pool of connections per process (portal/db/base.py): a request takes an open
    # connection and hands it back when Django closes it at the request's end, instead of connecting
    # anew each time (docs/performance.md). STRATUS_DB_POOL=0 turns it off; STRATUS_DB_POOL_SIZE idle
    # connections at most are kept per process, none unused for longer than STRATUS_DB_POOL_IDLE seconds.
    DATABASES["default"]["ENGINE"] = "portal.db"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        stratus_pool=env_bool("STRATUS_DB_POOL", True),
        stratus_pool_size=int(os.environ.get("STRATUS_DB_POOL_SIZE", "16")),
        stratus_pool_idle=float(os.environ.get("STRATUS_DB_POOL_IDLE", "10")))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, worker, beat) share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# A node agent holds no database credentials (issue 16; workers/control_bus.py): its launcher sets
# STRATUS_NO_DATABASE=1 and leaves DATABASE_URL out, so a query tried on a node fails at once
# (ImproperlyConfigured) instead of reaching a database.
STRATUS_NO_DATABASE = env_bool("STRATUS_NO_DATABASE", False)
if STRATUS_NO_DATABASE:
    DATABASES = {"default": {"ENGINE": "django.db.backends.dummy"}}
if os.environ.get("STRATUS_TEST_DB_NAME"):
    # set by tests/testenv.py: each test run gets a database of its own, so runs side by side never collide
    DATABASES["default"]["TEST"] = {"NAME": os.environ["STRATUS_TEST_DB_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "identity.User"
AUTHENTICATION_BACKENDS = [
    "apps.identity.backends.KeystoneBackend",
    "guardian.backends.ObjectPermissionBackend",
]
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # no guardian anonymous user row

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
if env_bool("STRATUS_FAST_PASSWORD_HASHER", False):
    # Tests only: hashing cost is not what they measure.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]

LOGIN_URL = "/dashboard/login"
LOGIN_REDIRECT_URL = "/dashboard/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("STRATUS_CONTROL_QUEUE", "control")
# RabbitMQ (CELERY_BROKER_URL=amqp://user:password@host:5672/vhost; README "More than one machine"). The
# channel layer and the cache stay on Redis (REDIS_URL, the control tier only); nodes need only the broker.
STRATUS_BROKER_AMQP = CELERY_BROKER_URL.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")
# An enrolled node's role (its node.env sets it, with STRATUS_HOST): its broker user may touch only its own
# queue <role>.<host> and its own reply queues (lib/rabbitmq.py); "" on the controller.
STRATUS_NODE_ROLE = os.environ.get("STRATUS_NODE_ROLE", "")
if STRATUS_NODE_ROLE not in ("", "all", "controller", "compute", "network", "storage"):
    raise ImproperlyConfigured(f"STRATUS_NODE_ROLE={STRATUS_NODE_ROLE!r}: compute, network or storage expected")
_node_queue = (f"{STRATUS_NODE_ROLE}.{os.environ.get('STRATUS_HOST', '') or os.uname().nodename}"
               if STRATUS_NODE_ROLE in ("compute", "network", "storage") else "")
# The prefix of this process's reply queues (portal/celery.py's thread_oid; the routing keys of its
# answers on the reply exchange): a node's own, or the control tier's.
STRATUS_REPLY_PREFIX = f"reply.{_node_queue or CELERY_TASK_DEFAULT_QUEUE}."
# Results: on Redis, Redis. On RabbitMQ, unless CELERY_RESULT_BACKEND is set, RPC over the broker itself
# (portal/celery_rpc.py: Celery's rpc:// through the topic exchange stratus.reply instead of the default
# exchange), so that a node without Redis gets control_bus.ask's answers, and the web tier
# core.tasks.task_result's, each through its own reply queue.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or (
    "portal.celery_rpc.ReplyBackend+rpc://" if STRATUS_BROKER_AMQP else REDIS_URL)
CELERY_TASK_ACKS_LATE = True
# Acknowledged late (above): a node killed mid-task (SIGKILL, a crash, a power cut) leaves its message
# unacknowledged, the broker gives it back to the node's queue when the connection drops, and the restarted
# worker runs it again (node tasks are idempotent; one never restarted ends in a fault at its control-side
# timeout; tests/workers/test_rabbitmq_broker.py). In a prefork pool, a child that dies has its task
# requeued the same way instead of failed.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A prefix for every broker key (queues included), so that several clouds (or test runs) can share one
# Redis without taking each other's tasks. On RabbitMQ the isolation is the vhost (the URL's path).
if os.environ.get("STRATUS_CELERY_KEYPREFIX") and not STRATUS_BROKER_AMQP:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": os.environ["STRATUS_CELERY_KEYPREFIX"]}
if STRATUS_BROKER_AMQP:
    # AMQP heartbeats (a dead TCP peer is noticed within ~2 intervals, its unacked messages requeued),
    # publisher confirms (a report is on the broker, not in a socket buffer, when send_task returns), and
    # topic exchanges named as their queues, so every publish goes through the queue's own exchange and
    # never through the default exchange (which would let a node's user write into any queue by name).
    CELERY_BROKER_HEARTBEAT = float(os.environ.get("STRATUS_BROKER_HEARTBEAT", "30"))
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE = "topic"
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A node's worker takes no remote-control commands (celery.pidbox: a broadcast exchange every worker
# would have to read and write); nothing in Stratus sends them.
CELERY_WORKER_ENABLE_REMOTE_CONTROL = not _node_queue
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# What an enrolled node is given (POST /v1/nodes/enrol, apps/compute/services/node_enrolment.py): the
# broker URL it can reach from its machine (default: this controller's own CELERY_BROKER_URL, which is
# loopback for `make run`'s Redis), and the CA that signs the controller's TLS certificate, if a TLS
# proxy fronts it ("" = plain HTTP, no CA to give).
STRATUS_NODE_BROKER_URL = os.environ.get("STRATUS_NODE_BROKER_URL", "") or CELERY_BROKER_URL
STRATUS_NODE_CA_FILE = os.environ.get("STRATUS_NODE_CA_FILE", "")
STRATUS_CELERY_KEYPREFIX = os.environ.get("STRATUS_CELERY_KEYPREFIX", "")
# Per-node broker credentials (RabbitMQ only): "rabbitmqctl" = enrolment makes each node a RabbitMQ user
# limited to its own queue, with `rabbitmqctl` on this machine (root, or the rabbitmq user), and revoking
# its token deletes it; "off" (default) = every node gets STRATUS_NODE_BROKER_URL as it is. Redis has no
# per-queue users: with Redis there are no per-node credentials.
STRATUS_RABBITMQ_MANAGE = os.environ.get("STRATUS_RABBITMQ_MANAGE", "off")
if STRATUS_RABBITMQ_MANAGE not in ("off", "rabbitmqctl"):
    raise ImproperlyConfigured(f"STRATUS_RABBITMQ_MANAGE={STRATUS_RABBITMQ_MANAGE!r}: off or rabbitmqctl expected")
STRATUS_RABBITMQCTL = os.environ.get("STRATUS_RABBITMQCTL", "rabbitmqctl")
# On a new machine: the enrolment token `manage.py node_enrol` exchanges (`make node TOKEN=...` sets it; an
# environment variable rather than argv, which every local user can read).
STRATUS_NODE_TOKEN = os.environ.get("STRATUS_NODE_TOKEN", "")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE = {
    "identity-token-flush": {
        "task": "workers.identity.token_flush",
        "schedule": float(os.environ.get("STRATUS_TOKEN_FLUSH_SECONDS", "600")),
    },
}

# Task records (apps/core/tasks.py): Celery beat sends again, every STRATUS_TASK_RESEND_SECONDS, the
# tasks the broker refused and those still pending this long after their transaction committed.
STRATUS_TASK_RESEND_SECONDS = float(os.environ.get("STRATUS_TASK_RESEND_SECONDS", "30"))
STRATUS_TASK_SEND_GRACE_SECONDS = float(os.environ.get("STRATUS_TASK_SEND_GRACE_SECONDS", "60"))


def control_beat(task: str, seconds: float) -> dict[str, Any]:
    """A Celery beat entry: ``task`` every ``seconds`` on the control queue, dropped when a later one is due."""
    return {"task": task, "schedule": seconds, "options": {"queue": CELERY_TASK_DEFAULT_QUEUE, "expires": seconds}}


CELERY_BEAT_SCHEDULE["core-task-resend"] = control_beat("workers.taskrecord.resend", STRATUS_TASK_RESEND_SECONDS)
# ... and once an hour deletes the records that ended more than STRATUS_TASK_RECORD_DAYS ago.
STRATUS_TASK_RECORD_DAYS = float(os.environ.get("STRATUS_TASK_RECORD_DAYS", "14"))
CELERY_BEAT_SCHEDULE["core-task-prune"] = control_beat("workers.taskrecord.prune", 3600)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # socket_timeout None: redis-py 8 defaults to 5 s, which cuts channels_redis's 5 s blocking
        # BZPOPMIN and closes every live socket every few seconds.
        "CONFIG": {"hosts": [{"address": os.environ.get("CHANNELS_REDIS_URL", REDIS_URL), "socket_timeout": None}],
                   "prefix": os.environ.get("STRATUS_CHANNELS_PREFIX", "stratus")},
    }
}

CACHES = {
    "default": {
        # Django's RedisCache with one client per process, not one per request (portal/cache.py)
        "BACKEND": "portal.cache.SharedRedisCache",
        "LOCATION": os.environ.get("CACHE_URL", REDIS_URL),
        "KEY_PREFIX": os.environ.get("STRATUS_CACHE_PREFIX", "stratus"),
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.identity.api.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.identity.api.authentication.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # one JSON reader for every API: depth, NaN/Infinity, NUL and lone surrogates are a 400
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {"TITLE": "Stratus API", "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False}

# Identity
# Each web worker keeps the identity epoch (apps/identity/token_cache.py) current with a Redis pub/sub
# listener thread instead of a GET per request; 0 = a GET per request.
STRATUS_EPOCH_LISTENER = env_bool("STRATUS_EPOCH_LISTENER", True)
STRATUS_TOKEN_TTL_SECONDS = int(os.environ.get("STRATUS_TOKEN_TTL_SECONDS", str(24 * 3600)))
STRATUS_REGION = os.environ.get("STRATUS_REGION", "RegionOne")
# bootstrap's passwords for admin and demo ("" = generated once into the data dir)
STRATUS_ADMIN_PASSWORD = os.environ.get("STRATUS_ADMIN_PASSWORD", "")
STRATUS_DEMO_PASSWORD = os.environ.get("STRATUS_DEMO_PASSWORD", "")
# bootstrap uploads the demo image (a small blank qcow2) unless this is off
STRATUS_DEMO_IMAGE = env_bool("STRATUS_DEMO_IMAGE", True)
# Keystone's [security_compliance] lockout: after this many wrong passwords in a row a user is locked
# (401 even with the right password) for STRATUS_LOCKOUT_DURATION seconds, or until an admin sets
# enabled=true on it. 0 = never locked (Keystone's default).
STRATUS_LOCKOUT_FAILURE_ATTEMPTS = int(os.environ.get("STRATUS_LOCKOUT_FAILURE_ATTEMPTS", "0"))
STRATUS_LOCKOUT_DURATION = int(os.environ.get("STRATUS_LOCKOUT_DURATION", "1800"))

# A Server-Timing response header with each request's SQL query count and time (apps/core/servertiming.py),
# for devtools and the browser tests; off by default (and then not in the middleware chain at all).
STRATUS_SERVER_TIMING = env_bool("STRATUS_SERVER_TIMING", False)

# `make run` (manage.py up): the web server's port and address (loopback unless told otherwise), its
# uvicorn workers and the control-queue Celery worker's threads.
STRATUS_PORT = int(os.environ.get("STRATUS_PORT", "8000"))
STRATUS_BIND = os.environ.get("STRATUS_BIND", "") or "127.0.0.1"
# one uvicorn worker per core (at most 4 by default): Django serves a process's requests with one GIL
STRATUS_WEB_WORKERS = int(os.environ.get("STRATUS_WEB_WORKERS", "") or min(os.cpu_count() or 1, 4))
STRATUS_WORKER_CONCURRENCY = int(os.environ.get("STRATUS_WORKER_CONCURRENCY", "4"))
# The base URL the catalog advertises (bootstrap writes it into the endpoints).
STRATUS_PUBLIC_URL = os.environ.get(
    "STRATUS_PUBLIC_URL", f"http://127.0.0.1:{os.environ.get('STRATUS_PORT', '8000')}"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("STRATUS_LOG_LEVEL", "WARNING")},
}

# Images (Glance): where image data is kept. STRATUS_IMAGE_STORE=file (a directory, default under the
# data dir) or s3 (any S3-compatible endpoint through boto3).
STRATUS_IMAGE_STORE = os.environ.get("STRATUS_IMAGE_STORE", "file")
STRATUS_IMAGE_DIR = os.environ.get("STRATUS_IMAGE_DIR", str(DATA_DIR / "images"))
STRATUS_IMAGE_S3 = {
    "endpoint_url": os.environ.get("STRATUS_IMAGE_S3_ENDPOINT", ""),
    "bucket": os.environ.get("STRATUS_IMAGE_S3_BUCKET", "stratus-images"),
    "access_key": os.environ.get("STRATUS_IMAGE_S3_ACCESS_KEY", ""),
    "secret_key": os.environ.get("STRATUS_IMAGE_S3_SECRET_KEY", ""),
    "region": os.environ.get("STRATUS_IMAGE_S3_REGION", ""),
    "prefix": os.environ.get("STRATUS_IMAGE_S3_PREFIX", ""),
}
# Nodes read and write image data through the image API (issue 16), each request with a URL the control
# tier signed for one image, one purpose (read/write) and one node (lib/imageurl.py): valid for
# STRATUS_IMAGE_URL_TTL_SECONDS from when the task's spec was made, under STRATUS_IMAGE_URL_KEY ("" = a key
# derived from SECRET_KEY). A node needs neither: it only needs the controller's URL (STRATUS_PUBLIC_URL)
# and, behind a TLS proxy, its CA (STRATUS_CONTROLLER_CA, written by node_enrol).
STRATUS_IMAGE_URL_TTL_SECONDS = int(os.environ.get("STRATUS_IMAGE_URL_TTL_SECONDS", "3600"))
STRATUS_IMAGE_URL_KEY = os.environ.get("STRATUS_IMAGE_URL_KEY", "")
STRATUS_CONTROLLER_CA = os.environ.get("STRATUS_CONTROLLER_CA", "")
# JSON request bodies longer than this are refused with the API's 413 (Nova's and Neutron's
# max_request_body_size, 112 KiB); image data is capped by STRATUS_IMAGE_SIZE_CAP instead.
STRATUS_MAX_JSON_BODY = int(os.environ.get("STRATUS_MAX_JSON_BODY", str(112 * 1024)))
# ... but Heat's, which carry a template (up to 512 KiB, the engine's own limit) and its files: Heat's
# max_json_body_size.
STRATUS_MAX_HEAT_BODY = int(os.environ.get("STRATUS_MAX_HEAT_BODY", str(1 << 20)))
STRATUS_IMAGE_SIZE_CAP = int(os.environ.get("STRATUS_IMAGE_SIZE_CAP", str(1 << 40)))  # bytes, like Glance's 1 TiB
# The web-download import method (Glance's [import_filtering_opts]): http/https only, to these ports (an
# empty list: any), and never to a loopback, private, link-local, multicast or reserved address unless
# the URI's host is in STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS (comma-separated, default none).
STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = [h.strip().lower() for h in
                                      os.environ.get("STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS", "").split(",") if h.strip()]
STRATUS_IMAGE_IMPORT_ALLOWED_PORTS = [int(p) for p in
                                      os.environ.get("STRATUS_IMAGE_IMPORT_ALLOWED_PORTS", "80,443").split(",")
                                      if p.strip()]
STRATUS_IMAGE_IMPORT_TIMEOUT = float(os.environ.get("STRATUS_IMAGE_IMPORT_TIMEOUT", "30"))  # seconds per read

# Object storage (Swift v1, and the S3 face): the index is in the database, the bytes in an engine.
# STRATUS_OBJECT_STORE=file (a directory tree, default under the data directory) or s3 (an S3-compatible
# bucket: Ceph RGW, MinIO, AWS).
STRATUS_OBJECT_STORE = os.environ.get("STRATUS_OBJECT_STORE", "file")
STRATUS_OBJECT_DIR = os.environ.get("STRATUS_OBJECT_DIR", str(DATA_DIR / "objects"))
STRATUS_OBJECT_S3 = {
    "endpoint_url": os.environ.get("STRATUS_OBJECT_S3_ENDPOINT", ""),
    "bucket": os.environ.get("STRATUS_OBJECT_S3_BUCKET", "stratus-objects"),
    "access_key": os.environ.get("STRATUS_OBJECT_S3_ACCESS_KEY", ""),
    "secret_key": os.environ.get("STRATUS_OBJECT_S3_SECRET_KEY", ""),
    "region": os.environ.get("STRATUS_OBJECT_S3_REGION", ""),
    "prefix": os.environ.get("STRATUS_OBJECT_S3_PREFIX", ""),
}
STRATUS_OBJECT_MAX_FILE_SIZE = int(os.environ.get("STRATUS_OBJECT_MAX_FILE_SIZE", str(5 * 1024**3 + 2)))  # Swift's
# Objects past their X-Delete-At are hidden at once and deleted by this sweep (Swift's object expirer).
STRATUS_OBJECT_EXPIRE_SECONDS = float(os.environ.get("STRATUS_OBJECT_EXPIRE_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["objects-expire"] = control_beat("workers.objects.expire", STRATUS_OBJECT_EXPIRE_SECONDS)
# A PUT or DELETE inserts its container's counter change (readers add the pending ones); this folds them in.
STRATUS_OBJECT_FOLD_SECONDS = float(os.environ.get("STRATUS_OBJECT_FOLD_SECONDS", "5"))
CELERY_BEAT_SCHEDULE["objects-fold"] = control_beat("workers.objects.fold", STRATUS_OBJECT_FOLD_SECONDS)
# The auditor reads stored blobs back (oldest audit first, a bounded amount a run) and reports the corrupt.
STRATUS_OBJECT_AUDIT_SECONDS = float(os.environ.get("STRATUS_OBJECT_AUDIT_SECONDS", "300"))
CELERY_BEAT_SCHEDULE["objects-audit"] = control_beat("workers.objects.audit", STRATUS_OBJECT_AUDIT_SECONDS)
# Object storage's usage (bytes, objects, containers per account) sampled into telemetry.
STRATUS_OBJECT_USAGE_SECONDS = float(os.environ.get("STRATUS_OBJECT_USAGE_SECONDS", "600"))
CELERY_BEAT_SCHEDULE["objects-usage"] = control_beat("workers.objects.usage", STRATUS_OBJECT_USAGE_SECONDS)
# Telemetry's retention: each metric keeps its policy's timespans (apps.telemetry.services.measures_sweep).
STRATUS_TELEMETRY_SWEEP_SECONDS = float(os.environ.get("STRATUS_TELEMETRY_SWEEP_SECONDS", "600"))
CELERY_BEAT_SCHEDULE["telemetry-sweep"] = control_beat("workers.telemetry.sweep", STRATUS_TELEMETRY_SWEEP_SECONDS)
# Scheduled usage reports (apps/telemetry/reports.py, workers/reports.py): each schedule is a django-celery-beat
# CrontabSchedule row; this one static beat entry starts the runs that are due (the file scheduler keeps running
# the static entries, nothing of beat's own state goes to the database). Report files go to the object storage
# engine (STRATUS_OBJECT_STORE: the data directory's tree, or the S3-compatible bucket), under "reports/".
STRATUS_REPORTS_CHECK_SECONDS = float(os.environ.get("STRATUS_REPORTS_CHECK_SECONDS", "30"))
CELERY_BEAT_SCHEDULE["telemetry-reports-due"] = control_beat("workers.reports.due", STRATUS_REPORTS_CHECK_SECONDS)
# Each run mails its recipients: a project's own report (not an admin's) may not run more often than this, by
# its cron expression or by "Run now" (0: no limit).
STRATUS_REPORTS_MIN_INTERVAL_SECONDS = float(os.environ.get("STRATUS_REPORTS_MIN_INTERVAL_SECONDS", "3600"))
# Mail (reports, alarm e-mail actions): Django's backends, chosen by the environment (SMTP in a deployment;
# the file backend writes each message under EMAIL_FILE_PATH, which every process of `make run` shares).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(DATA_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "stratus@localhost")
# Glance's image_format_enforcement: uploaded and staged data must be the disk_format it claims and
# pass oslo.utils' format inspector's safety checks (no backing file, no qcow2 data-file, only
# monolithicSparse/streamOptimized VMDKs...), else 400 and the image stays queued. Nodes check every
# image again before qemu-img touches it, whatever this says.
STRATUS_IMAGE_FORMAT_ENFORCEMENT = env_bool("STRATUS_IMAGE_FORMAT_ENFORCEMENT", True)

# Network agent (workers/network.py): this node's name (its queue is network.<host>), its VXLAN
# endpoint ("" = the source address of this node's default route), and whether it really builds
# bridges/namespaces/dnsmasq/nftables: auto = only when it can (root and `ip netns add` works),
# yes = always try, no = never (compute and report only).
STRATUS_HOST = os.environ.get("STRATUS_HOST", "") or os.uname().nodename
STRATUS_VTEP_IP = os.environ.get("STRATUS_VTEP_IP", "")
STRATUS_NETWORK_APPLY = os.environ.get("STRATUS_NETWORK_APPLY", "auto")
# A compute node's L2 agent (`manage.py up --role compute` sets it): its bridges and VXLAN only, never
# DHCP or routers (those are the network node's; otherwise the first agent to register serves them).
STRATUS_NETWORK_L2_ONLY = env_bool("STRATUS_NETWORK_L2_ONLY", False)
# A simulated node: run the node's bridges inside this network namespace; namespaces it makes for
# DHCP/routers get this prefix (they are machine-wide). Empty = the real node.
STRATUS_NETWORK_NODE_NAMESPACE = os.environ.get("STRATUS_NETWORK_NODE_NAMESPACE", "")
STRATUS_NETWORK_NAMESPACE_PREFIX = os.environ.get("STRATUS_NETWORK_NAMESPACE_PREFIX", "")
STRATUS_NETWORK_STATE_DIR = os.environ.get("STRATUS_NETWORK_STATE_DIR", str(DATA_DIR / "network"))
STRATUS_NETWORK_VXLAN_INTERFACE = os.environ.get("STRATUS_NETWORK_VXLAN_INTERFACE", "")
# flat networks: "physnet:interface,..." (e.g. "public:eth1")
STRATUS_NETWORK_PHYSICAL_INTERFACES = os.environ.get("STRATUS_NETWORK_PHYSICAL_INTERFACES", "")
# The node serving routers also acts as the external networks' upstream router (devstack's br-ex):
# their subnets' gateway IPs on its bridge, forwarding on, masquerade out of its other interfaces, so
# floating IPs are reachable from the node and guests reach beyond it. Off by default.
STRATUS_NETWORK_EXTERNAL_GATEWAY = env_bool("STRATUS_NETWORK_EXTERNAL_GATEWAY", False)
# Tenant networks get VXLAN ids from this range; a node that reported within
# STRATUS_NETWORK_SYNC_REACH_SECONDS is still sent its networks' changes (it may only be slow); an agent
# silent longer than STRATUS_NETWORK_AGENT_DOWN_SECONDS shows as down.
STRATUS_VNI_MIN = int(os.environ.get("STRATUS_VNI_MIN", "1"))
STRATUS_VNI_MAX = int(os.environ.get("STRATUS_VNI_MAX", str(2**24 - 1)))
STRATUS_NETWORK_SYNC_REACH_SECONDS = int(os.environ.get("STRATUS_NETWORK_SYNC_REACH_SECONDS", "3600"))
STRATUS_NETWORK_AGENT_DOWN_SECONDS = int(os.environ.get("STRATUS_NETWORK_AGENT_DOWN_SECONDS", "75"))
# The external network bootstrap makes ("public"): its subnet, type and, for flat, its physnet.
STRATUS_PUBLIC_CIDR = os.environ.get("STRATUS_PUBLIC_CIDR", "172.24.4.0/24")
STRATUS_PUBLIC_NETWORK_TYPE = os.environ.get("STRATUS_PUBLIC_NETWORK_TYPE", "vxlan")
STRATUS_PUBLIC_PHYSNET = os.environ.get("STRATUS_PUBLIC_PHYSNET", "public")
STRATUS_NETWORK_RESYNC_SECONDS = float(os.environ.get("STRATUS_NETWORK_RESYNC_SECONDS", "30"))
# Periodic full resync (and heartbeat) of the network agents on these hosts: a push from the control queue.
STRATUS_NETWORK_RESYNC_HOSTS = [h for h in os.environ.get("STRATUS_NETWORK_RESYNC_HOSTS", STRATUS_HOST).split(",")
                                if h]
for _host in STRATUS_NETWORK_RESYNC_HOSTS:
    CELERY_BEAT_SCHEDULE[f"network-resync-{_host}"] = {  # workers/network_control.py: load, send to the node
        "task": "workers.network_control.push",
        "schedule": STRATUS_NETWORK_RESYNC_SECONDS,
        "kwargs": {"host": _host},
        "options": {"queue": CELERY_TASK_DEFAULT_QUEUE, "expires": STRATUS_NETWORK_RESYNC_SECONDS},
    }

# Compute
# The availability zones compute nodes may be placed in (Nova's default_availability_zone first).
STRATUS_AVAILABILITY_ZONES = [z.strip() for z in os.environ.get("STRATUS_AVAILABILITY_ZONES", "nova").split(",")
                              if z.strip()]
# Compute nodes (workers/agent.py) and the scheduler (apps/compute/scheduler.py).
# `make run` starts STRATUS_NODES simulated nodes (libvirt test driver, STRATUS_HYPERVISOR=test), each
# sized STRATUS_NODE_VCPUS / STRATUS_NODE_MEMORY_MB / STRATUS_NODE_DISK_GB.
STRATUS_NODES = int(os.environ.get("STRATUS_NODES", "2"))
STRATUS_HYPERVISOR = os.environ.get("STRATUS_HYPERVISOR", "test")
# The pollster: every STRATUS_TELEMETRY_POLL_SECONDS each compute node in STRATUS_TELEMETRY_POLL_HOSTS (comma
# separated; by default the nodes `make run` starts: compute1..STRATUS_NODES on the test hypervisor, else this
# host) reads its domains' libvirt counters on its own queue (workers.telemetry.poll).
STRATUS_TELEMETRY_POLL_SECONDS = float(os.environ.get("STRATUS_TELEMETRY_POLL_SECONDS", "60"))
STRATUS_TELEMETRY_POLL_HOSTS = [h for h in os.environ.get(
    "STRATUS_TELEMETRY_POLL_HOSTS",
    ",".join(f"compute{i}" for i in range(1, STRATUS_NODES + 1)) if STRATUS_HYPERVISOR == "test" else STRATUS_HOST,
).split(",") if h]
for _host in STRATUS_TELEMETRY_POLL_HOSTS:
    CELERY_BEAT_SCHEDULE[f"telemetry-poll-{_host}"] = {
        "task": "workers.telemetry.poll", "schedule": STRATUS_TELEMETRY_POLL_SECONDS, "kwargs": {"host": _host},
        "options": {"queue": f"compute.{_host}", "expires": STRATUS_TELEMETRY_POLL_SECONDS},
    }
STRATUS_NODE_VCPUS = int(os.environ.get("STRATUS_NODE_VCPUS", "8"))
STRATUS_NODE_MEMORY_MB = int(os.environ.get("STRATUS_NODE_MEMORY_MB", "16384"))
STRATUS_NODE_DISK_GB = int(os.environ.get("STRATUS_NODE_DISK_GB", "200"))
# This process is the agent of compute node <host> (set only in a node's worker process).
STRATUS_COMPUTE_HOST = os.environ.get("STRATUS_COMPUTE_HOST", "")
# That node's hypervisor (test:///abs/node.xml for a simulated node, qemu:///system for a real one),
# and the address os-hypervisors shows for it ("" = the source address of the default route).
LIBVIRT_URI = os.environ.get("LIBVIRT_URI", "")
STRATUS_COMPUTE_HOST_IP = os.environ.get("STRATUS_COMPUTE_HOST_IP", "")
STRATUS_COMPUTE_AVAILABILITY_ZONE = os.environ.get("STRATUS_COMPUTE_AVAILABILITY_ZONE", "")
# A node is down when its last heartbeat is older than this (Nova's service_down_time).
STRATUS_COMPUTE_SERVICE_DOWN_TIME = float(os.environ.get("STRATUS_COMPUTE_SERVICE_DOWN_TIME", "60"))
STRATUS_COMPUTE_HEARTBEAT_SECONDS = float(os.environ.get("STRATUS_COMPUTE_HEARTBEAT_SECONDS", "10"))
STRATUS_COMPUTE_POWER_SYNC_SECONDS = float(os.environ.get("STRATUS_COMPUTE_POWER_SYNC_SECONDS", "30"))
# On a real hypervisor a new guest starts paused and runs once its ports are ACTIVE (wired by the network
# agent), waiting at most this long, then the boot fails (Nova's vif_plugging_timeout; 0: do not wait).
STRATUS_COMPUTE_VIF_PLUGGING_TIMEOUT = float(os.environ.get("STRATUS_COMPUTE_VIF_PLUGGING_TIMEOUT", "300"))
STRATUS_CPU_ALLOCATION_RATIO = float(os.environ.get("STRATUS_CPU_ALLOCATION_RATIO", "16.0"))
STRATUS_RAM_ALLOCATION_RATIO = float(os.environ.get("STRATUS_RAM_ALLOCATION_RATIO", "1.5"))
STRATUS_DISK_ALLOCATION_RATIO = float(os.environ.get("STRATUS_DISK_ALLOCATION_RATIO", "1.0"))
STRATUS_RESERVED_HOST_MEMORY_MB = int(os.environ.get("STRATUS_RESERVED_HOST_MEMORY_MB", "0"))
# Storage nodes (workers/storage.py): volume files under STRATUS_VOLUMES_DIR/<host>/ ("" = DATA_DIR/volumes),
# a heartbeat every STRATUS_STORAGE_HEARTBEAT_SECONDS; a backend silent longer than the down time gets no volume.
STRATUS_VOLUMES_DIR = os.environ.get("STRATUS_VOLUMES_DIR", "")
STRATUS_STORAGE_HEARTBEAT_SECONDS = float(os.environ.get("STRATUS_STORAGE_HEARTBEAT_SECONDS", "10"))
STRATUS_STORAGE_SERVICE_DOWN_TIME = float(os.environ.get("STRATUS_STORAGE_SERVICE_DOWN_TIME", "60"))
# spread: the node with the most free RAM first; stack: the least (packs nodes).
STRATUS_SCHEDULER_WEIGHER = os.environ.get("STRATUS_SCHEDULER_WEIGHER", "spread")
STRATUS_SCHEDULER_MAX_ATTEMPTS = int(os.environ.get("STRATUS_SCHEDULER_MAX_ATTEMPTS", "3"))
# Metadata service (apps/compute/api/views_metadata.py) and the network agent's metadata proxy
# (workers/drivers/network/metadata_proxy.py): the proxy signs the instance id with this shared secret
# (from the environment, else generated once into the data dir, mode 0600, and read by every process)
# and forwards the guests' requests to STRATUS_METADATA_URL.


def _metadata_secret() -> str:
    import secrets
    import time

    if os.environ.get("STRATUS_METADATA_SECRET"):
        return os.environ["STRATUS_METADATA_SECRET"]
    path = DATA_DIR / "metadata-secret"
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    for _ in range(50):  # a concurrent creator may not have written it yet
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty: remove it or set STRATUS_METADATA_SECRET")


STRATUS_METADATA_SECRET = _metadata_secret()
STRATUS_METADATA_URL = os.environ.get(
    "STRATUS_METADATA_URL", f"http://127.0.0.1:{os.environ.get('STRATUS_PORT', '8000')}/metadata/")


def allowed_hosts(environ: Mapping[str, str], *, public_url: str, metadata_url: str) -> list[str]:
    """STRATUS_ALLOWED_HOSTS (comma-separated, Django's syntax) when set; else the hosts of the public
    and metadata URLs and localhost, never '*': a page of another site cannot open the live socket
    (AllowedHostsOriginValidator checks its Origin against these) nor pass a forged Host."""
    if environ.get("STRATUS_ALLOWED_HOSTS", "").strip():
        return [h.strip() for h in environ["STRATUS_ALLOWED_HOSTS"].split(",") if h.strip()]
    from urllib.parse import urlsplit

    hosts = ["localhost", "127.0.0.1", "[::1]"]
    for url in (public_url, metadata_url):
        host = urlsplit(url).hostname or ""
        host = f"[{host}]" if ":" in host else host
        if host and host not in hosts:
            hosts.append(host)
    return hosts


ALLOWED_HOSTS = allowed_hosts(os.environ, public_url=STRATUS_PUBLIC_URL, metadata_url=STRATUS_METADATA_URL)
# Compute node tasks (workers/compute.py): where a node keeps its instances' files (one directory per
# instance: disk overlay, ephemeral/swap, config drive, console log) and its cache of Glance images;
# STRATUS_FORCE_CONFIG_DRIVE gives every instance a config drive, not only those that ask.
STRATUS_INSTANCES_PATH = os.environ.get("STRATUS_INSTANCES_PATH", str(DATA_DIR / "instances"))
STRATUS_IMAGE_CACHE_PATH = os.environ.get("STRATUS_IMAGE_CACHE_PATH", str(DATA_DIR / "image-cache"))
# How long a node waits for a boot volume it was given to become usable.
STRATUS_BOOT_VOLUME_TIMEOUT_SECONDS = float(os.environ.get("STRATUS_BOOT_VOLUME_TIMEOUT_SECONDS", "300"))
STRATUS_FORCE_CONFIG_DRIVE = os.environ.get("STRATUS_FORCE_CONFIG_DRIVE", "false").lower() in ("1", "true", "yes")
# The address a qemu/kvm node's domains' VNC servers listen on: the node's loopback (or its management
# address), never a tenant network; the console relay reaches them through libvirt. Empty: no graphics.
STRATUS_VNC_LISTEN = os.environ.get("STRATUS_VNC_LISTEN", "127.0.0.1")
# How long a console URL's token (os-remote-consoles) may wait for its one use (Nova's token_ttl).
STRATUS_CONSOLE_TOKEN_SECONDS = int(os.environ.get("STRATUS_CONSOLE_TOKEN_SECONDS", "600"))
# Servers (apps/compute/services/servers.py): a server still in BUILD after this long goes to ERROR with
# its claims released, checked every STRATUS_BUILD_TIMEOUT_CHECK_SECONDS on the control queue.
STRATUS_BUILD_TIMEOUT_SECONDS = float(os.environ.get("STRATUS_BUILD_TIMEOUT_SECONDS", "600"))
STRATUS_BUILD_TIMEOUT_CHECK_SECONDS = float(os.environ.get("STRATUS_BUILD_TIMEOUT_CHECK_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["compute-build-timeouts"] = control_beat("workers.compute_control.build_timeouts",
                                                             STRATUS_BUILD_TIMEOUT_CHECK_SECONDS)

# Orchestration (apps/orchestration): Heat's max_resources_per_stack and default stack timeout (minutes);
# every STRATUS_STACK_TIMEOUT_CHECK_SECONDS a beat task fails the stacks still in progress past their
# timeout (a worker that died mid-stack never leaves one IN_PROGRESS for ever).
STRATUS_MAX_RESOURCES_PER_STACK = int(os.environ.get("STRATUS_MAX_RESOURCES_PER_STACK", "1000"))
# how deep nested stacks (OS::Heat::Stack, provider templates, groups) may go: Heat's max_nested_stack_depth
STRATUS_MAX_NESTED_STACK_DEPTH = int(os.environ.get("STRATUS_MAX_NESTED_STACK_DEPTH", "5"))
STRATUS_STACK_TIMEOUT_MINS = int(os.environ.get("STRATUS_STACK_TIMEOUT_MINS", "60"))
# signals to one stack resource per minute (its token-free URL and the API alike), and wrong signal
# tokens one client may send per minute (apps/orchestration/signals.py)
STRATUS_HEAT_SIGNAL_RATE = int(os.environ.get("STRATUS_HEAT_SIGNAL_RATE", "120"))
STRATUS_HEAT_SIGNAL_GUESSES = int(os.environ.get("STRATUS_HEAT_SIGNAL_GUESSES", "20"))
STRATUS_STACK_TIMEOUT_CHECK_SECONDS = float(os.environ.get("STRATUS_STACK_TIMEOUT_CHECK_SECONDS", "30"))
CELERY_BEAT_SCHEDULE["orchestration-timeouts"] = control_beat("workers.orchestration.timeouts",
                                                              STRATUS_STACK_TIMEOUT_CHECK_SECONDS)
# Aodh's evaluator: every enabled alarm, every STRATUS_ALARM_EVALUATION_SECONDS (apps.telemetry.services.alarms).
STRATUS_ALARM_EVALUATION_SECONDS = float(os.environ.get("STRATUS_ALARM_EVALUATION_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["telemetry-alarms"] = control_beat("workers.telemetry.evaluate_alarms",
                                                        STRATUS_ALARM_EVALUATION_SECONDS)
# Where alarm webhooks may point (lib/webhook.py): public addresses only, unless the operator admits private
# ranges and loopback here (receivers on its own network); link-local (the metadata service) never.
STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE = os.environ.get("STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE", "").lower() in (
    "1", "true", "yes", "on")
# An action's task tries again on a connection error or a 5xx, this many times, backing off 1, 2, 4... s (max 60).
STRATUS_ALARM_NOTIFY_RETRIES = int(os.environ.get("STRATUS_ALARM_NOTIFY_RETRIES", "5"))
# Alarms' history is kept this many days (the telemetry sweep removes older events; 0 keeps it for ever).
STRATUS_ALARM_HISTORY_DAYS = float(os.environ.get("STRATUS_ALARM_HISTORY_DAYS", "90"))
