"""The Celery application shared by the portal and every node's worker."""
import os
import uuid

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


class Stratus(Celery):
    @property
    def thread_oid(self) -> str:
        """Per-thread name of this process's reply queue (``reply_to`` of the tasks it sends, and the RPC
        result backend's queue): settings STRATUS_REPLY_PREFIX (``reply.<its queue>.``) and a random
        UUID, so a node's broker user can be allowed its own reply queues only, and nobody can guess
        another's (Celery's default is derived from the host, pid and thread)."""
        try:
            return self._local.oid
        except AttributeError:
            from django.conf import settings

            self._local.oid = oid = f"{settings.STRATUS_REPLY_PREFIX}{uuid.uuid4()}"
            return oid


app = Stratus("stratus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"], related_name=None, force=True)
