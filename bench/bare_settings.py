"""The portal's settings with one change: the URL conf of the bare views (bench only)."""
from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_app"
