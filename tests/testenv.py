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
