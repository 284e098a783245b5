"""Building blocks shared by every app's models."""
import uuid

from django.db import models


def new_id() -> str:
    """OpenStack ids: 32 lowercase hex characters (a UUID without dashes)."""
    return uuid.uuid4().hex


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Resource(TimeStamped):
    """A row with an OpenStack-style id."""

    id = models.CharField(primary_key=True, max_length=64, default=new_id, editable=False)

    class Meta:
        abstract = True
