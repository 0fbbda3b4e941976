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

A stamp taken inside a transaction is older than the moment others can see the change: a
harvest between the write and the commit would not see it, and the next one, asking
``from`` that harvest's ``responseDate``, would skip it for good. So the records a
transaction stamped are stamped again when it commits (:class:`_Restamp`): their
datestamp is then at or after the moment the change became visible. The stamp in the
transaction stays as the fallback should the process stop between the two.
"""

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
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


class _Restamp:
    """The scopes one transaction stamped, stamped again when it commits."""

    def __init__(self, using) -> None:
        self.using = using
        self.records: set = set()
        self.projects: set = set()
        self.institutions: set = set()

    def __call__(self) -> None:
        scope = (
            Q(pk__in=self.records)
            | Q(project_id__in=self.projects)
            | Q(project__institution_id__in=self.institutions)
        )
        stamp(DmpRecord.objects.db_manager(self.using).filter(scope))

    @classmethod
    def of(cls, using) -> "_Restamp | None":
        """This transaction's, registered on first use; ``None`` outside a transaction
        (the stamp then commits at once)."""
        connection = transaction.get_connection(using)
        if not connection.in_atomic_block:
            return None
        for _sids, func, _robust in connection.run_on_commit:
            if isinstance(func, cls):
                return func
        restamp = cls(using)
        transaction.on_commit(restamp, using=using, robust=True)
        return restamp


def _record(scope, using) -> None:
    restamp = _Restamp.of(using)
    if restamp is not None:
        restamp.records.add(scope)
    stamp(DmpRecord.objects.db_manager(using).filter(pk=scope))


def _project(scope, using) -> None:
    restamp = _Restamp.of(using)
    if restamp is not None:
        restamp.projects.add(scope)
    stamp(DmpRecord.objects.db_manager(using).filter(project_id=scope))


def _institution(scope, using) -> None:
    restamp = _Restamp.of(using)
    if restamp is not None:
        restamp.institutions.add(scope)
    stamp(DmpRecord.objects.db_manager(using).filter(project__institution_id=scope))


def listen() -> None:
    """Keep the datestamps (called once, when the repository app is ready)."""
    RECORD.listen(_record)
    PROJECT_DETAILS.listen(_project)
    INSTITUTION.listen(_institution)
