"""The auditor (Swift's object auditor): each stored blob is read back now and then and checked
against its object's row (size and md5); what fails is reported, and the row keeps the finding.

A read already refuses a blob that does not match (``selectors.verified_chunks``: an error, never
wrong bytes); the auditor finds such blobs before anyone reads them. ``objects_audit`` looks at the
objects audited longest ago (never audited first), at most ``limit`` of them and about ``max_bytes``
of data a run, so a beat task (``workers.objects.audit``) walks the whole store in turn whatever its
size. A blob replaced while it was being read is not judged (its row's location moved on). Static
large objects have no blob of their own (their segments are objects, audited as such)."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from apps.objects import selectors
from apps.objects.models import Object
from apps.objects.storage import get_engine
from lib.objectstore import EngineError


@dataclass
class AuditReport:
    checked: int = 0
    bytes: int = 0
    # (account, container, object, what is wrong) of each blob that failed
    failed: list[tuple[str, str, str, str]] = field(default_factory=list)


def objects_audit(*, limit: int = 200, max_bytes: int = 256 << 20) -> AuditReport:
    """Read back the blobs of up to ``limit`` objects (stopping once ``max_bytes`` were read), oldest
    audit first; record on each row when it was audited and what was wrong (``audit_error``, "" when
    sound); the report lists the failures."""
    report = AuditReport()
    for obj in selectors.audit_candidates(limit=limit):
        if report.bytes >= max_bytes:
            break
        error = ""
        try:
            chunks = get_engine(obj.engine).reader(obj.location, chunk_size=1 << 20)
            for chunk in selectors.verified_chunks(chunks, obj.etag, obj.size, obj.location):
                report.bytes += len(chunk)
        except EngineError as exc:
            error = str(exc)[:512]
        updated = Object.objects.filter(pk=obj.pk, location=obj.location).update(
            audited_at=timezone.now(), audit_error=error)
        report.checked += 1
        if error and updated:
            report.failed.append((obj.container.project_id, obj.container.name, obj.name, error))
    return report
