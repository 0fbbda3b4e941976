"""Reads for the DMP pages. Data objects are seen only through ``repository.access``."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Project, bilingual
from accounts.roles import ProjectAction, may
from core.vocabularies import (
    ACCESS_RIGHTS,
    DATA_POLICY_FREE,
    DATA_TYPES,
    FUNDERS,
    LICENSES,
    RESEARCH_FIELDS,
    SAME_AS_PROJECT,
    MetadataAccess,
)
from dmp.common_metadata import incomplete_condition, missing_requirements
from dmp.items import FIELDSETS, ITEM_NAMES, item_label, item_stem
from dmp.madmp_import import plan_imported_parts
from dmp.models import (
    RECORD_FIELDS,
    DataManagementPlan,
    DataManagementPlanVersion,
    DmpRecord,
    DmpRecordRevision,
    RecordCreator,
)
from dmp.services import PLAN_ANSWER_FIELDS
from repository.access import Action, projects_visible_to, records_visible_to, visible_to
from repository.models import DataObject
from repository.usage.selectors import ScopeCounts, usage_by_scope


def _missing_items(record: DmpRecord) -> list[str]:
    """Labels of the required items ``record`` lacks."""
    return [str(requirement.label) for requirement in missing_requirements(record)]


def plan_answer_label(name: str) -> str:
    return str(DataManagementPlan._meta.get_field(name).verbose_name)


def plan_history(plan: DataManagementPlan | None) -> list[dict]:
    """Versions newest first, each with who saved it, when, and which answers changed."""
    if plan is None:
        return []
    versions = list(plan.versions.select_related("saved_by").order_by("version"))
    history = []
    previous: DataManagementPlanVersion | None = None
    for version in versions:
        if previous is None:
            changed = [name for name in PLAN_ANSWER_FIELDS if version.answers.get(name)]
        else:
            changed = [
                name
                for name in PLAN_ANSWER_FIELDS
                if version.answers.get(name, "") != previous.answers.get(name, "")
            ]
        history.append(
            {
                "version": version,
                "first": previous is None,
                "changed": [capfirst(plan_answer_label(name)) for name in changed],
                "changed_fields": changed,
            }
        )
        previous = version
    history.reverse()
    return history


# The latest revisions the record page lists; older ones stay stored.
HISTORY_SHOWN = 100
# Items in the order the history lists their changes.
HISTORY_ORDER = {name: index for index, name in enumerate((*RECORD_FIELDS, "creators"))}


def record_history(record: DmpRecord) -> dict:
    """The record's revisions, newest first (at most :data:`HISTORY_SHOWN`): who saved
    each, when, how, and every item it changed with its value before and after, in the
    page's language. A baseline revision (the state when the history began) lists the
    record's items as they were."""
    revisions = list(
        record.revisions.select_related("saved_by").order_by("-number")[: HISTORY_SHOWN + 1]
    )
    more = len(revisions) > HISTORY_SHOWN
    entries = []
    for revision in revisions[:HISTORY_SHOWN]:
        shown = revision.changes
        if revision.kind == DmpRecordRevision.Kind.BASELINE:
            shown = {n: [None, v] for n, v in revision.items.items() if v not in ("", None, [])}
        changes = [
            {
                "name": name,
                "label": item_field_label(name),
                "before": item_display(name, values[0], project=record.project),
                "after": item_display(name, values[1], project=record.project),
            }
            for name, values in sorted(
                shown.items(), key=lambda pair: HISTORY_ORDER.get(pair[0], len(HISTORY_ORDER))
            )
        ]
        entries.append({"revision": revision, "changes": changes})
    return {"entries": entries, "more": more, "shown": HISTORY_SHOWN}


def project_records(*, user, project: Project, objects: QuerySet) -> QuerySet:
    """The project's records ``user`` may read, with counts over the objects in ``objects``."""
    visible = Q(data_objects__in=objects.values("pk"))
    return (
        records_visible_to(user)
        .filter(project=project)
        .select_related("project")
        .prefetch_related(
            Prefetch("creators", queryset=RecordCreator.objects.order_by("position", "pk"))
        )
        .annotate(
            object_count=Count("data_objects", filter=visible, distinct=True),
            mismatched_count=Count(
                "data_objects",
                filter=visible & ~Q(data_objects__tier=F("access_rights")),
                distinct=True,
            ),
        )
        .order_by("data_number", "pk")
    )


@dataclass
class Coverage:
    objects_without_record: list[DataObject] = field(default_factory=list)
    records_without_objects: list[DmpRecord] = field(default_factory=list)
    records_missing_items: list[tuple[DmpRecord, list[str]]] = field(default_factory=list)
    records_disagreeing: list[tuple[DmpRecord, list[tuple[str, str, int]]]] = field(
        default_factory=list
    )

    @property
    def complete(self) -> bool:
        return not (
            self.objects_without_record
            or self.records_without_objects
            or self.records_missing_items
            or self.records_disagreeing
        )


def coverage(*, records: list[DmpRecord], objects: QuerySet) -> Coverage:
    """What the DMP does not yet cover, and where declared and actual access disagree."""
    result = Coverage(
        objects_without_record=list(
            objects.filter(record__isnull=True).order_by("original_filename", "pk")
        ),
        records_without_objects=[r for r in records if r.object_count == 0],
    )
    for record in records:
        missing = _missing_items(record)
        if missing:
            result.records_missing_items.append((record, missing))
    disagreeing = [r for r in records if r.mismatched_count]
    if disagreeing:
        tiers: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
        rows = (
            objects.filter(record__in=[r.pk for r in disagreeing])
            .order_by()
            .values_list("record_id", "tier")
            .annotate(n=Count("pk"))
            .order_by("record_id", "tier")
        )
        for record_id, tier, n in rows:
            tiers[record_id].append((tier, ACCESS_RIGHTS[tier].label(), n))
        result.records_disagreeing = [(r, tiers[r.pk]) for r in disagreeing]
    return result


def dmp_page_context(*, user, project: Project) -> dict:
    plan = DataManagementPlan.objects.filter(project=project).select_related("updated_by").first()
    objects = visible_to(user, Action.VIEW_METADATA).filter(
        project=project, status=DataObject.Status.STORED
    )
    records = list(project_records(user=user, project=project, objects=objects))
    for record in records:
        record.access_rights_label = ACCESS_RIGHTS[record.access_rights].label()
        record.data_type_label = (
            DATA_TYPES[record.data_type].label() if record.data_type in DATA_TYPES else ""
        )
    answers = [
        {"name": name, "label": plan_answer_label(name), "value": getattr(plan, name, "")}
        for name in PLAN_ANSWER_FIELDS
        if name != "title"
    ]
    return {
        "project": project,
        "plan": plan,
        "answers": answers,
        "history": plan_history(plan),
        "imported_parts": plan_imported_parts(plan),
        "records": records,
        "coverage": coverage(records=records, objects=objects),
        "can_edit": may(user, ProjectAction.EDIT_DMP, project),
        "export_formats": EXPORT_FORMATS,
    }


# ?format= values of the DMP page's exports, with their button text.
EXPORT_FORMATS = {
    "csti-csv-ja": _("Common metadata CSV (Japanese)"),
    "csti-csv-en": _("Common metadata CSV (English)"),
    "madmp-json": _("maDMP JSON"),
    "moonshot-xlsx": _("Moonshot DMP table (XLSX)"),
}


VOCABULARIES = {
    "data_type": DATA_TYPES,
    "data_policy_free": DATA_POLICY_FREE,
    "data_policy_license": LICENSES,
    "access_rights": ACCESS_RIGHTS,
    "data_research_field": RESEARCH_FIELDS,
}


def item_display(name: str, value, *, project: Project) -> str:
    """A record item's value (as stored, or as the history keeps it) in the page's
    language: vocabulary labels, Yes / No / Unknown, creators' names."""
    if name == "creators":
        return "; ".join(bilingual(c.get("name_ja", ""), c.get("name_en", "")) for c in value or [])
    if name == "data_research_field" and value == SAME_AS_PROJECT:
        field = RESEARCH_FIELDS[project.research_field].label()
        return _("Same as the project (%(field)s)") % {"field": field}
    if name in VOCABULARIES and value in VOCABULARIES[name]:
        return VOCABULARIES[name][value].label()
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if value is None and name == "contains_personal_data":
        return _("Unknown")  # never shown as "No"
    if value is None:
        return _("Unknown") if name == "contains_personal_data" else ""
    try:
        choices = dict(DmpRecord._meta.get_field(name).flatchoices)
    except FieldDoesNotExist:  # an item a later version of Kura no longer has
        choices = {}
    return str(choices.get(value, value))


def item_field_label(name: str) -> str:
    """The label of one stored item: the official name of a common item (with the
    language of a pair's half), else the field's own name."""
    if name == "creators" or (name in ITEM_NAMES and item_stem(name) == name):
        return item_label(name)
    try:
        return capfirst(DmpRecord._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def _file_size_from_objects(totals: dict) -> str:
    count = totals["object_count"]
    return ngettext(
        "%(size)s in %(count)d data object (counted from the objects)",
        "%(size)s in %(count)d data objects (counted from the objects)",
        count,
    ) % {"size": filesizeformat(totals["object_size"]), "count": count}


def record_object_totals(user) -> dict:
    """Annotations of a DmpRecord queryset: ``object_count`` and ``object_size`` (bytes)
    of each record's stored objects that ``user`` may see (``repository.access``), as
    subqueries of the same statement, so a list costs no query per record."""
    objects = (
        visible_to(user, Action.VIEW_METADATA)
        .filter(record=OuterRef("pk"), status=DataObject.Status.STORED)
        .order_by()
        .values("record")
    )
    return {
        "object_count": Coalesce(Subquery(objects.annotate(n=Count("pk")).values("n")), 0),
        "object_size": Coalesce(Subquery(objects.annotate(b=Sum("size")).values("b")), 0),
    }


def record_sections(record: DmpRecord, totals: dict | None = None) -> list[dict]:
    """The record's items, grouped like the form, with values in the page's language.

    A File size (概略データ量) nobody entered is shown from ``totals``, the record's objects
    (:func:`record_object_totals`); one entered by hand wins (docs/metadata.md)."""
    totals = totals or {"object_count": 0, "object_size": 0}
    sections = []
    for slug, legend, names in FIELDSETS:
        items = []
        for name in names:
            if hasattr(record, f"{name}_ja") and not hasattr(record, name):
                items.append(
                    {
                        "pair": True,
                        "label": item_label(name),
                        "ja": getattr(record, f"{name}_ja"),
                        "en": getattr(record, f"{name}_en"),
                    }
                )
            else:
                value = item_display(name, getattr(record, name), project=record.project)
                if name == "file_size" and not value and totals["object_count"]:
                    value = _file_size_from_objects(totals)
                items.append({"pair": False, "label": item_field_label(name), "ja": value})
        sections.append({"slug": slug, "legend": legend, "items": items})
    return sections


def record_page_context(*, user, record: DmpRecord) -> dict:
    objects = (
        visible_to(user, Action.VIEW_METADATA)
        .filter(record=record, status=DataObject.Status.STORED)
        .order_by("original_filename", "pk")
    )
    totals = (
        DmpRecord.objects.filter(pk=record.pk)
        .annotate(**record_object_totals(user))
        .values("object_count", "object_size")
        .get()
    )
    return {
        "project": record.project,
        "record": record,
        "creators": record.creators.order_by("position", "pk"),
        "objects": objects,
        "totals": totals,
        "missing": _missing_items(record),
        "sections": record_sections(record, totals),
        # The page is for those who may read the project's DMP (the view asks), and so
        # is the history: what the record was is no more public than what it is.
        "history": record_history(record),
        "can_edit": may(user, ProjectAction.EDIT_DMP, record.project),
        # Stewards publish versions from the record's public page, which an open record has.
        "has_public_page": record.metadata_access == MetadataAccess.OPEN
        and not record.withdrawn_at,
    }


NO_STREAM = "-"  # URL stand-in for a blank funding stream code


def program_key(project: Project) -> tuple[str, str]:
    return project.funder, project.funding_stream_code or NO_STREAM


def program_overview(*, user) -> list[dict]:
    """Projects grouped by program (funder, funding stream), each with DMP completeness."""
    projects = list(
        projects_visible_to(user)
        .select_related("institution")
        .annotate(record_count=Count("records", distinct=True))
        .order_by("funder", "funding_stream_code", "name_en", "name_ja", "pk")
    )
    incomplete = dict(
        records_visible_to(user)
        .filter(incomplete_condition(DmpRecord), project__in=[p.pk for p in projects])
        .order_by()
        .values_list("project_id")
        .annotate(n=Count("pk"))
        .values_list("project_id", "n")
    )
    unrecorded = dict(
        visible_to(user, Action.VIEW_METADATA)
        .filter(
            project__in=[p.pk for p in projects],
            record__isnull=True,
            status=DataObject.Status.STORED,
        )
        .order_by()
        .values_list("project_id")
        .annotate(n=Count("pk"))
        .values_list("project_id", "n")
    )
    usage = usage_by_scope(by="project_id", project_ids=[p.pk for p in projects])
    groups: dict[tuple[str, str], dict] = {}
    for project in projects:
        key = program_key(project)
        group = groups.setdefault(
            key,
            {
                "funder": key[0],
                "funder_label": FUNDERS[project.funder].label()
                if project.funder in FUNDERS
                else project.funder,
                "funding_stream_code": key[1],
                "program_name": project.program_name,
                "projects": [],
            },
        )
        project.records_missing_items = incomplete.get(project.pk, 0)
        project.objects_without_record = unrecorded.get(project.pk, 0)
        project.usage = usage.get(project.pk, ScopeCounts())
        group["projects"].append(project)
    return list(groups.values())


def program_projects(*, user, funder: str, funding_stream_code: str) -> QuerySet:
    """The program's projects ``user`` may see."""
    code = "" if funding_stream_code == NO_STREAM else funding_stream_code
    return projects_visible_to(user).filter(funder=funder, funding_stream_code=code)


def program_records(*, user, funder: str, funding_stream_code: str) -> QuerySet:
    """Every record ``user`` may read in the program's projects, for the combined export."""
    projects = program_projects(user=user, funder=funder, funding_stream_code=funding_stream_code)
    return (
        records_visible_to(user)
        .filter(project__in=projects)
        .order_by("project_id", "data_number", "pk")
    )
