"""Writes to the DMP: the plan (versioned) and its records (common metadata rows).

Every service checks permission itself (``accounts.roles.may``, ``ProjectAction.EDIT_DMP``),
so views, API and imports cannot forget to; and each audits what it changed, in its
transaction.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Project, User
from accounts.roles import ProjectAction, may
from core.audit import AuditAction, audit_record
from core.tiers import dated_tiers

from .common_metadata import missing_requirements
from .history import record_items, record_revision_write
from .models import (
    CREATOR_FIELDS,
    RECORD_FIELDS,
    DataManagementPlan,
    DataManagementPlanVersion,
    DmpRecord,
    DmpRecordRevision,
    RecordCreator,
)

# The plan-level answers, in the order the page shows them.
PLAN_ANSWER_FIELDS = (
    "title",
    "data_produced",
    "storage_and_preservation",
    "publication_policy",
    "restriction_reasons",
    "management_roles",
)

# Fields of DmpRecord a form or the API may set (everything but project and timestamps).


# Checks an app above ``dmp`` lends to record updates (docs/architecture.md, "Layering"):
# each gets the record as it would be saved and its items as stored, and returns field
# errors ({} when it has none). ``repository`` registers one when it starts: a published
# record's metadata stays open (``repository.publishing.versions.record_update_refusals``).
RecordUpdateCheck = Callable[[DmpRecord, Mapping[str, Any]], dict[str, list[str]]]
_update_checks: list[RecordUpdateCheck] = []


def record_update_check_register(check: RecordUpdateCheck) -> None:
    """Have :func:`record_update` ask ``check`` before it saves (once, however often
    registered)."""
    if check not in _update_checks:
        _update_checks.append(check)


def _checked(record: DmpRecord, before: Mapping[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for check in _update_checks:
        for name, messages in check(record, before).items():
            errors.setdefault(name, []).extend(messages)
    return errors


def record_update_errors(record: DmpRecord) -> dict[str, list[str]]:
    """What the registered checks refuse in saving ``record``, changed in memory, over its
    stored row (for the admin, which saves without :func:`record_update`)."""
    stored = DmpRecord.objects.get(pk=record.pk)
    return _checked(record, record_items(stored, creators=False))


def _require_steward(actor, project: Project) -> None:
    if not may(actor, ProjectAction.EDIT_DMP, project):
        raise PermissionDenied(_("Only the project manager or a data manager may change the DMP."))


def required_item_errors(record: DmpRecord) -> dict[str, list[str]]:
    """Field-level errors for the required common items ``record`` lacks.

    The rules are :data:`dmp.common_metadata.REQUIRED`. A bilingual item needs its Japanese
    or English value and the error is shown on both halves; the available date is
    required when access is embargoed and refused otherwise.
    """
    errors: dict[str, list[str]] = {}
    for requirement in missing_requirements(record):
        if requirement.name == "data_man_contact":
            errors["data_man_email"] = [
                _(
                    "Give the data manager's e-mail address, or their organisation, "
                    "address and phone number."
                )
            ]
        elif requirement.name == "available_date":
            errors["available_date"] = [_("Embargoed access needs an available date.")]
        elif len(requirement.fields) == 2:
            message = _("Enter this in Japanese or English (or both).")
            for name in requirement.fields:
                errors[name] = [message]
        else:
            errors[requirement.name] = [_("This field is required.")]
    if record.access_rights not in dated_tiers() and record.available_date:
        errors["available_date"] = [_("Only embargoed access has an available date.")]
    return errors


def next_data_number(project: Project) -> str:
    """A free Data No. to suggest for the next record of ``project``.

    Follows the newest record's pattern (prefix and zero padding): after D-001…D-005
    comes D-006. Without a numbered pattern, one more than the largest number in use.
    """
    numbers = list(
        DmpRecord.objects.filter(project=project)
        .order_by("-created_at", "-pk")
        .values_list("data_number", flat=True)
    )
    taken = set(numbers)
    pattern = re.compile(r"^(.*?)(\d+)$")
    for number in numbers:
        match = pattern.match(number)
        if match:
            prefix, digits = match.groups()
            width = len(digits)
            used = [
                int(m.group(2)) for n in numbers if (m := pattern.match(n)) and m.group(1) == prefix
            ]
            candidate = max(used) + 1
            while f"{prefix}{candidate:0{width}d}" in taken:
                candidate += 1  # pragma: no cover - max() + 1 is free unless padded oddly
            return f"{prefix}{candidate:0{width}d}"
    ints = [int(n) for n in numbers if n.isdigit()]
    return str(max(ints, default=0) + 1)


def _plan_answers(plan: DataManagementPlan) -> dict[str, str]:
    return {name: getattr(plan, name) for name in PLAN_ANSWER_FIELDS}


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict, dict]:
    """The items whose value differs, as (before, after)."""
    changed = [name for name in after if before.get(name) != after[name]]
    return {n: before.get(n) for n in changed}, {n: after[n] for n in changed}


@transaction.atomic
def plan_save(
    *,
    actor,
    plan_or_project: DataManagementPlan | Project,
    answers: Mapping[str, str],
    ip_address: str | None = None,
) -> DataManagementPlan:
    """Save the plan-level answers, creating the plan if the project has none.

    Every save bumps ``version`` and keeps a :class:`DataManagementPlanVersion` with the
    full answers and who saved them, in the same transaction. A save that changes an
    answer audits ``plan_edited`` with the answers it changed and the version.
    """
    if isinstance(plan_or_project, DataManagementPlan):
        project = plan_or_project.project
    else:
        project = plan_or_project
    _require_steward(actor, project)
    unknown = set(answers) - set(PLAN_ANSWER_FIELDS)
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    plan = DataManagementPlan.objects.select_for_update().filter(project=project).first()
    before = _plan_answers(plan) if plan is not None else {}
    if plan is None:
        plan = DataManagementPlan(project=project, version=0)
        plan.title = answers.get("title") or _("Data management plan of %(project)s") % {
            "project": project.name
        }
    for name, value in answers.items():
        setattr(plan, name, value or "")
    if not plan.title:
        raise ValidationError({"title": [_("This field is required.")]})
    plan.version += 1
    plan.updated_by = actor if actor.is_authenticated else None
    plan.full_clean()
    plan.save()
    DataManagementPlanVersion.objects.create(
        plan=plan, version=plan.version, answers=_plan_answers(plan), saved_by=plan.updated_by
    )
    if before:
        changed_before, changed_after = _changes(before, _plan_answers(plan))
    else:  # a new plan: what it was created with
        changed_before, changed_after = {}, {n: v for n, v in _plan_answers(plan).items() if v}
    if changed_after:
        audit_record(
            actor=actor,
            action=AuditAction.PLAN_EDITED,
            project=project,
            ip_address=ip_address,
            before={**changed_before, "version": plan.version - 1} if before else {},
            after={**changed_after, "version": plan.version},
        )
    return plan


def _record_apply(record: DmpRecord, fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - set(RECORD_FIELDS)
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(record, name, value)


def _record_validate(record: DmpRecord) -> None:
    errors = required_item_errors(record)
    duplicate = (
        DmpRecord.objects.filter(project_id=record.project_id, data_number=record.data_number)
        .exclude(pk=record.pk)
        .exists()
    )
    if record.data_number and duplicate:
        errors.setdefault("data_number", []).append(
            _("Another record of this project already has this Data No.")
        )
    try:
        # Constraints are checked above with field-level messages, and again by the database.
        record.full_clean(exclude=["project"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(m for m in messages if m not in errors.get(name, []))
    if errors:
        raise ValidationError(errors)


def _creators_replace(record: DmpRecord, creators: Iterable[Mapping[str, str]]) -> None:
    rows = []
    errors: list[str] = []
    for position, data in enumerate(creators):
        creator = RecordCreator(
            record=record,
            position=position,
            **{name: data.get(name) or "" for name in CREATOR_FIELDS},
        )
        row_errors: dict[str, list[str]] = {}
        if not (creator.name_ja or creator.name_en):
            row_errors["name"] = [_("Enter the name in Japanese or English (or both).")]
        try:
            creator.full_clean(exclude=["record"], validate_constraints=False)
        except ValidationError as exc:
            row_errors.update(exc.message_dict)
        errors.extend(
            _("Creator %(position)d, %(field)s: %(message)s")
            % {"position": position + 1, "field": name, "message": message}
            for name, messages in row_errors.items()
            for message in messages
        )
        rows.append(creator)
    if errors:
        raise ValidationError({"creators": errors})
    verified = _verified_orcids({c.erad_researcher_number for c in rows})
    for creator in rows:
        creator.orcid = verified.get(creator.erad_researcher_number, "")
    record.creators.all().delete()
    RecordCreator.objects.bulk_create(rows)


def _verified_orcids(erad_numbers: Iterable[str]) -> dict[str, str]:
    """The verified ORCID iD of each e-Rad researcher number that exactly one account with
    a verified iD holds (two accounts claiming one number give no iD: neither is sure)."""
    found: dict[str, str] = {}
    ambiguous: set[str] = set()
    rows = (
        User.objects.filter(
            erad_researcher_number__in=[n for n in erad_numbers if n], orcid_verified=True
        )
        .exclude(orcid="")
        .values_list("erad_researcher_number", "orcid")
    )
    for number, orcid in rows:
        if number in found and found[number] != orcid:
            ambiguous.add(number)
        found[number] = orcid
    return {n: o for n, o in found.items() if n not in ambiguous}


def record_creators_orcid_follow(*, user: User) -> int:
    """Give ``user``'s verified ORCID iD to the creators with their e-Rad researcher number
    (creators are not accounts: the number is what ties one to a person); answers how many
    changed. Run when an iD is verified (accounts.orcid.orcid_verified); versions published
    earlier keep the creators they froze."""
    number = user.erad_researcher_number
    if not number:
        return 0
    orcid = _verified_orcids([number]).get(number, "")
    if not orcid:
        return 0
    return (
        RecordCreator.objects.filter(erad_researcher_number=number)
        .exclude(orcid=orcid)
        .update(orcid=orcid)
    )


@transaction.atomic
def record_create(
    *,
    actor,
    project: Project,
    fields: Mapping[str, Any],
    creators: Iterable[Mapping[str, str]] = (),
    ip_address: str | None = None,
) -> DmpRecord:
    """Declare a new managed dataset in ``project`` with its creators (in citation order);
    keeps its first revision (:mod:`dmp.history`) and audits ``record_created`` with the
    items it was given.

    Raises ``ValidationError`` with field-level messages when a required item is missing.
    """
    _require_steward(actor, project)
    record = DmpRecord(project=project)
    _record_apply(record, fields)
    _record_validate(record)
    record.save()
    _creators_replace(record, list(creators))
    given = record_items(record, creators=True)
    record_revision_write(
        record=record, actor=actor, kind=DmpRecordRevision.Kind.CREATED, before=None
    )
    audit_record(
        actor=actor,
        action=AuditAction.RECORD_CREATED,
        record=record,
        ip_address=ip_address,
        after={name: value for name, value in given.items() if value not in ("", None, False, [])},
    )
    return record


@transaction.atomic
def record_update(
    *,
    actor,
    record: DmpRecord,
    fields: Mapping[str, Any],
    creators: Iterable[Mapping[str, str]] | None = None,
    ip_address: str | None = None,
) -> DmpRecord:
    """Change a record's common metadata; ``creators`` (when given) replaces the list.

    Keeps a revision (:mod:`dmp.history`) and audits ``record_edited`` with the items that
    changed (before and after); a save that changes nothing writes neither. Raises
    ``ValidationError`` with field-level messages when an item is invalid or a registered
    check refuses the change (closing the metadata of a published record).
    """
    _require_steward(actor, record.project)
    record = DmpRecord.objects.select_for_update().get(pk=record.pk)
    kept = record_items(record)  # the whole record, for its history
    before = kept if creators is not None else {k: v for k, v in kept.items() if k != "creators"}
    _record_apply(record, fields)
    _record_validate(record)
    if errors := _checked(record, before):
        raise ValidationError(errors)
    record.save()
    if creators is not None:
        _creators_replace(record, list(creators))
    changed_before, changed_after = _changes(
        before, record_items(record, creators=creators is not None)
    )
    record_revision_write(
        record=record, actor=actor, kind=DmpRecordRevision.Kind.EDITED, before=kept
    )
    if changed_after:
        audit_record(
            actor=actor,
            action=AuditAction.RECORD_EDITED,
            record=record,
            ip_address=ip_address,
            before=changed_before,
            after=changed_after,
        )
    return record
