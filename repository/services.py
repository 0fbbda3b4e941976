"""Writes: every change of data objects and their access goes through a function here."""

from accounts.models import Project
from core.tiers import open_to_everyone
from dmp.models import DmpRecord
from repository.models import AuditEvent, DataObject


def audit_event_record(
    *,
    actor,
    action: AuditEvent.Action,
    data_object: DataObject | None = None,
    record: DmpRecord | None = None,
    project: Project | None = None,
    ip_address: str | None = None,
    before: dict | None = None,
    after: dict | None = None,
    detail: str = "",
) -> AuditEvent:
    """Append one event to the audit trail (append-only).

    The event is about ``data_object`` (its project and record are taken from it); for
    events that concern a whole record such as access grants, about ``record``; for events
    that concern the project's DMP as a whole (the plan, an import), about ``project``.
    Write it in the transaction of the change it records, so that a change rolled back
    leaves no event.
    """
    if data_object is not None:
        project_id, record_id = data_object.project_id, data_object.record_id
    elif record is not None:
        project_id, record_id = record.project_id, record.pk
    elif project is not None:
        project_id, record_id = project.pk, None
    else:
        raise ValueError("An audit event is about a data object or a record (or a project).")
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        project_id=project_id,
        data_object=data_object,
        record_id=record_id,
        ip_address=ip_address,
        before=before or {},
        after=after or {},
        detail=detail,
    )


def audit_events_record(
    *,
    actor_id: int | None,
    action: AuditEvent.Action,
    data_objects: list[DataObject],
    ip_address: str | None = None,
    before: dict | None = None,
    after: dict | list[dict] | None = None,
) -> list[AuditEvent]:
    """Append one event per object of ``data_objects`` (the same action by the same actor,
    e.g. a batch of uploads), in one statement: :func:`audit_event_record` for many.
    ``after`` is one dict for every event, or one per object."""
    afters = after if isinstance(after, list) else [after] * len(data_objects)
    return AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                actor_id=actor_id,
                action=action,
                project_id=data_object.project_id,
                data_object=data_object,
                record_id=data_object.record_id,
                ip_address=ip_address,
                before=before or {},
                after=object_after or {},
            )
            for data_object, object_after in zip(data_objects, afters, strict=True)
        ]
    )


def data_object_download_note(*, actor, data_object: DataObject, ip_address: str | None) -> None:
    """Audit a download of non-public data; public downloads are not traced."""
    if open_to_everyone(data_object.tier):
        return
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.DOWNLOAD,
        data_object=data_object,
        ip_address=ip_address,
        after={"tier": data_object.tier},
    )
