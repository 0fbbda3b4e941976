"""The landing page as one dataclass, and the facts it is built on.

:func:`landing_page` assembles everything ``repository/public/landing.html`` shows from
the record's :class:`~repository.discovery.public.facts.RecordFacts` and the objects the visitor may
see (:mod:`repository.discovery.public.landing`), with its Signposting links
(:mod:`repository.discovery.public.signposts`); the view renders it and sends its ``Link`` header.
"""

from dataclasses import dataclass
from urllib.parse import quote

from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from accounts.models import Project
from accounts.roles import ProjectAction, may
from core.tiers import Downloaders, dated_tiers, downloaded_by
from core.vocabularies import DATA_POLICY_FREE, Term
from dmp.models import DmpRecord, RecordCreator
from repository.access import projects_visible_to
from repository.discovery.public import citation, exports, landing, schemaorg, signposts
from repository.discovery.public.exports import ExportFormat
from repository.discovery.public.facts import RecordFacts
from repository.discovery.public.signposts import Link
from repository.models import DataObject, DatasetConcept, DatasetVersion
from repository.publishing.facts import still_public
from repository.publishing.selectors import version_facts_of
from repository.usage.selectors import Counts, record_usage


def record_facts(request, record: DmpRecord) -> RecordFacts:
    """The facts every export of ``record`` is built from, as seen through ``request``."""
    return RecordFacts(
        record,
        landing_url=signposts.landing_url(request, record.pk),
        files=landing.public_files(request, [record])[record.pk],
        catalog_url=request.build_absolute_uri(reverse("home")),
        published=landing.published(request, [record]).get(record.pk, landing.Published()),
    )


def _access_request_mailto(record: DmpRecord) -> str:
    if not record.data_man_email:
        return ""
    subject = _("Access request: %(number)s %(title)s") % {
        "number": record.data_number,
        "title": record.title,
    }
    return f"mailto:{record.data_man_email}?subject={quote(subject)}"


@dataclass(frozen=True)
class LandingPage:
    """A dataset's landing page (``repository/public/landing.html``)."""

    record: DmpRecord
    project: Project
    creators: list[RecordCreator]
    objects: list[DataObject]
    project_visible: bool
    licence: Term | None
    access_right: Term
    data_type: Term | None
    fee_policy: Term | None
    research_field: Term | None
    funder: Term | None
    keywords: list[str]
    doi: str
    cite_as: str
    citation: str  # the record's (all versions'): the concept DOI once there is one
    citations: list[citation.Citation]  # the latest version's once published, else the record's
    cited_version: DatasetVersion | None  # the version ``citations`` cite
    jsonld_script: str
    highwire: list[tuple[str, str]]  # Google Scholar's <meta name="citation_…"> tags
    access_request_mailto: str
    exports: list[ExportFormat]
    has_public_files: bool
    dated_tiers: tuple[str, ...]  # objects that open on their available date
    grantable_tiers: tuple[str, ...]  # objects a grant opens: "Request access"
    links: list[Link]  # Signposting: the ``Link`` header and the <link> elements
    versions: list[DatasetVersion]  # published versions, newest first
    concept: DatasetConcept | None  # the concept DOI, once a version is published
    may_publish: bool  # the visitor is a steward: the publish and withdraw forms
    usage: Counts  # public views and downloads by people (COUNTER), public files only
    image_previews: bool  # a listed image the visitor may preview: the deep-zoom viewer


def landing_page(request, record: DmpRecord, *, facts: RecordFacts | None = None) -> LandingPage:
    """The landing page of ``record`` (not withdrawn) as ``request``'s user sees it;
    ``facts``: the record's facts when the view has made them already."""
    objects = list(landing.listed_objects(user=request.user, record=record))
    facts = facts or record_facts(request, record)
    versions = list(record.versions.order_by("-number"))
    cited_version = versions[0] if versions else None
    if cited_version is not None:
        # People cite the data they used: the latest version, with its own DOI.
        version = version_facts_of(
            cited_version,
            still_public(cited_version.manifest),
            absolute_uri=request.build_absolute_uri,
        )
        cite = citation.citations(version, prefix="version-")
    else:
        cite = citation.citations(facts)
    links = signposts.landing_links(request, facts) + signposts.linkset_urls(request, record.pk)
    project = record.project
    return LandingPage(
        record=record,
        project=project,
        creators=list(record.creators.all()),
        objects=objects,
        # Anyone who sees one of its objects may open the project page (access.project_rule).
        # For visitors without a session the page is cached under this record's files only
        # (public/cache.py), so it links the project when one of *these* files is listed,
        # never because of another record's files.
        project_visible=bool(objects)
        or (
            request.user.is_authenticated
            and projects_visible_to(request.user).filter(pk=project.pk).exists()
        ),
        licence=facts.licence,
        access_right=facts.access_right,
        data_type=facts.data_type,
        fee_policy=DATA_POLICY_FREE[record.data_policy_free]
        if record.data_policy_free in DATA_POLICY_FREE
        else None,
        research_field=facts.research_field,
        funder=facts.funder,
        keywords=facts.keywords,
        doi=facts.doi,
        cite_as=signposts.cite_as(facts)[0],
        citation=citation.citation_text(facts),
        citations=cite,
        cited_version=cited_version,
        jsonld_script=schemaorg.script_tag(schemaorg.dataset(facts)),
        highwire=citation.highwire_tags(facts, get_language() or ""),
        access_request_mailto=_access_request_mailto(record),
        exports=exports.menu(facts),
        has_public_files=bool(facts.files),
        dated_tiers=dated_tiers(),
        grantable_tiers=downloaded_by(Downloaders.MEMBERS_AND_GRANTEES),
        links=links,
        versions=versions,
        concept=DatasetConcept.objects.filter(record=record).first(),
        may_publish=request.user.is_authenticated
        and may(request.user, ProjectAction.EDIT_DMP, project),
        usage=record_usage(record.pk)["public"],
        image_previews=any(
            obj.can_preview
            and obj.preview_state == DataObject.PreviewState.READY
            and obj.preview.get("kind") == "image"
            for obj in objects
        ),
    )
