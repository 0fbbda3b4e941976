"""Which records are OAI-PMH items, and their datestamps (``DmpRecord.harvest_changed_at``).

An item's datestamp is the last change to anything its metadata formats show: the
record's fields and creators, its files (added, deleted, moved, opened or closed, renamed,
checksummed), its project and the project's institution; or the moment harvesters lost
it (its metadata closed, the record withdrawn). Every write that may change one of those
moves a scoped generation (``core.generations``): ``RECORD`` (the record's row, its
creators, and its files while they are, or were before the write, on a tier open beyond
the project: ``repository.models.DataObjectQuerySet``), ``PROJECT_DETAILS`` (its project)
and ``INSTITUTION``. This module listens to those three families and stamps the records
in scope with the time, in the writing transaction, so a stamp commits with its change and
an incremental harvest (``from``) sees it. Files nobody outside the project sees move
nothing (their uploads and checks tell harvesters nothing, not even when they happened).
A write that changes nothing harvested (the edit of a column no format shows, the check
of a public file's checksum) moves the stamp too: harvesters then collect the same record
again, which the protocol allows; missing a change it does not.

A record becomes an item the first time anyone may read its metadata (the first stamp)
and stays one: once its metadata is closed or it is withdrawn it is a deleted record
(``deletedRecord=persistent``), dated when that happened. A record never opened has no
stamp and is not an item at all.
"""

from django.contrib.auth.models import AnonymousUser
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone

from core.generations import INSTITUTION, PROJECT_DETAILS, RECORD
from dmp.models import DmpRecord
from repository.access import record_rule


def published() -> Q:
    """Records whose metadata anyone may read (withdrawn ones included: tombstones)."""
    return record_rule(AnonymousUser())


def live() -> Q:
    """Items served with their metadata; every other item is a deleted record."""
    return published() & Q(withdrawn_at__isnull=True)


def items() -> QuerySet:
    """Every OAI-PMH item, live or deleted, with ``is_live`` annotated."""
    return DmpRecord.objects.filter(harvest_changed_at__isnull=False).annotate(
        is_live=ExpressionWrapper(live(), output_field=BooleanField())
    )


def stamp(records: QuerySet) -> int:
    """Move the datestamp of ``records`` that are, or have been, items to now."""
    exposed = Q(harvest_changed_at__isnull=False) | published()
    return records.filter(exposed).update(harvest_changed_at=timezone.now())


def _record(scope, using) -> None:
    stamp(DmpRecord.objects.db_manager(using).filter(pk=scope))


def _project(scope, using) -> None:
    stamp(DmpRecord.objects.db_manager(using).filter(project_id=scope))


def _institution(scope, using) -> None:
    stamp(DmpRecord.objects.db_manager(using).filter(project__institution_id=scope))


def listen() -> None:
    """Keep the datestamps (called once, when the repository app is ready)."""
    RECORD.listen(_record)
    PROJECT_DETAILS.listen(_project)
    INSTITUTION.listen(_institution)
