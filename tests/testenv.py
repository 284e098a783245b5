"""Loaded by pytest before Django (``-p tests.testenv``): the test run's environment.

Tests use the real PostgreSQL and Redis on 127.0.0.1; each run gets its own data dir and Redis
key prefixes so runs never see each other's state.
"""
import atexit
import os
import shutil
import tempfile
import uuid

RUN_ID = uuid.uuid4().hex[:8]
# Under pytest-xdist (`make test` runs two workers) each worker is a process of its own that inherits the
# controller's environment: the names below get the worker's id, so the workers' Celery queues, Redis
# keys and data dirs never meet (pytest-django gives each worker its own test database the same way).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if WORKER:
    for _name in ("STRATUS_CHANNELS_PREFIX", "STRATUS_CACHE_PREFIX", "STRATUS_CONTROL_QUEUE"):
        if _name in os.environ:
            os.environ[_name] = f"{os.environ[_name]}-{WORKER}"
    if "STRATUS_CELERY_KEYPREFIX" in os.environ:
        os.environ["STRATUS_CELERY_KEYPREFIX"] = os.environ["STRATUS_CELERY_KEYPREFIX"].rstrip(":") + f"-{WORKER}:"
    if "STRATUS_DATA_DIR" in os.environ:
        _worker_dir = os.path.join(os.environ["STRATUS_DATA_DIR"], WORKER)
        os.makedirs(_worker_dir, exist_ok=True)
        os.environ["STRATUS_DATA_DIR"] = _worker_dir

os.environ.setdefault("DATABASE_URL", "postgres://stratus:stratus@127.0.0.1:5432/stratus")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
if "STRATUS_DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix="stratus-test-")
    os.environ["STRATUS_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ.setdefault("STRATUS_CHANNELS_PREFIX", f"stratus-test-{RUN_ID}")
os.environ.setdefault("STRATUS_CACHE_PREFIX", f"stratus-test-{RUN_ID}")
os.environ.setdefault("STRATUS_CONTROL_QUEUE", f"control-test-{RUN_ID}")
os.environ.setdefault("STRATUS_CELERY_KEYPREFIX", f"stratus-test-{RUN_ID}:")  # queues of nodes too
os.environ.setdefault("STRATUS_FAST_PASSWORD_HASHER", "1")
os.environ.setdefault("STRATUS_DEMO_IMAGE", "0")  # bootstrap's demo image only where a test asks for it
# pytest-django appends _gw<n> per xdist worker; it drops the database at the end of the run
os.environ.setdefault("STRATUS_TEST_DB_NAME", f"test_stratus_{RUN_ID}")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + RUN_ID)
