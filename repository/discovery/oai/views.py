"""The OAI-PMH 2.0 endpoint: six verbs over GET and POST, eight error codes.

Protocol: https://www.openarchives.org/OAI/openarchivesprotocol.html. Notes on codes that
can hardly occur here:

* ``noMetadataFormats``: every record is disseminated in every format, so an identifier
  either has both formats or does not exist (``idDoesNotExist``).
* ``noSetHierarchy``: Kura has sets (``project:<pk>``, ``program:<funder>[:<code>]``, and
  their parents ``project`` and ``program``); the code is returned only while no record is
  harvestable, so there are no sets at all.

Which records are items, and their datestamps, are ``stamps``'s: a record once harvestable
stays an item, as a deleted record once closed or withdrawn.
"""

import datetime
import re
import xml.etree.ElementTree as ET  # noqa: S405 - we build XML, never parse untrusted input
from dataclasses import replace

from django.conf import settings
from django.db.models import Exists, Min, OuterRef, Q, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import Project
from core.db import statement_timeout
from core.vocabularies import FUNDERS
from dmp.models import DmpRecord
from repository.discovery.oai import stamps, tokens
from repository.discovery.public import exports, signposts
from repository.discovery.public.facts import RecordFacts
from repository.discovery.public.harvested import XSI
from repository.discovery.public.landing import Published, public_files, published

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_IDENTIFIER = "http://www.openarchives.org/OAI/2.0/oai-identifier"
# Identifiers issued before the repository identifier was a domain name (oai:kura:record/<n>)
# are still understood, for harvesters that stored them; answers carry the new form.
LEGACY_REPOSITORY_ID = "kura"

LIST_ARGUMENTS = ({"metadataPrefix"}, {"from", "until", "set"})
# verb -> (required arguments, optional arguments); resumptionToken is handled apart.
VERBS = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), set()),
    "ListIdentifiers": LIST_ARGUMENTS,
    "ListRecords": LIST_ARGUMENTS,
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
}
RESUMABLE = {"ListSets", "ListIdentifiers", "ListRecords"}
# The roots of the set hierarchy; every record is in both, through its project's sets.
PARENT_SETS = {"program": "Programs", "project": "Projects"}
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SECONDS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class OAIError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- Helpers -------------------------------------------------------------------------------


def repository_id() -> str:
    return settings.KURA_OAI_REPOSITORY_ID


def page_size() -> int:
    return getattr(settings, "KURA_OAI_PAGE_SIZE", 100)


def oai_identifier(pk: int) -> str:
    return f"oai:{repository_id()}:record/{pk}"


def record_pk(identifier: str) -> int:
    for repository in (repository_id(), LEGACY_REPOSITORY_ID):
        suffix = identifier.removeprefix(f"oai:{repository}:record/")
        if suffix != identifier and suffix.isascii() and suffix.isdigit():
            return int(suffix)
    raise OAIError("idDoesNotExist", f"No item has the identifier {identifier!r}.")


def datestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def harvestable() -> QuerySet:
    """Records whose metadata is open to anyone: what the sets are made of."""
    return DmpRecord.objects.filter(stamps.published())


def parse_bound(value: str, *, upper: bool) -> tuple[datetime.datetime, str]:
    """A ``from``/``until`` value as an aware lower bound (inclusive) or upper bound
    (exclusive: the datestamp is truncated to the second), and its granularity."""
    try:
        if DAY_RE.match(value):
            moment = datetime.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=datetime.UTC)
            return moment + datetime.timedelta(days=1) if upper else moment, "day"
        if SECONDS_RE.match(value):
            moment = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.UTC
            )
            return moment + datetime.timedelta(seconds=1) if upper else moment, "seconds"
    except ValueError:
        pass
    raise OAIError("badArgument", f"Not a UTC datestamp of day or second granularity: {value!r}.")


def set_specs(project: Project) -> list[str]:
    """The most specific sets a project's records are in; being in ``a:b`` they are also
    in ``a`` (§2.6), which the header leaves implied."""
    program = f"program:{project.funder}"
    if project.funding_stream_code:
        program = f"{program}:{project.funding_stream_code}"
    return [f"project:{project.pk}", program]


def filter_by_set(records: QuerySet, spec: str) -> QuerySet:
    """The records in set ``spec`` or in any set below it."""
    parts = spec.split(":")
    if spec in PARENT_SETS:
        return records  # every record has a project, and every project a funder
    if len(parts) == 2 and parts[0] == "project" and parts[1].isascii() and parts[1].isdigit():
        return records.filter(project_id=int(parts[1]))
    if len(parts) in (2, 3) and parts[0] == "program":
        records = records.filter(project__funder=parts[1])
        if len(parts) == 3:
            records = records.filter(project__funding_stream_code=parts[2])
        return records
    return records.none()


def list_records_query(state: tokens.ListState) -> QuerySet:
    """The list's items after the token's key (without it, the whole list), in key order."""
    records = stamps.items()
    if state.set_spec is not None:
        if not harvestable().exists():
            raise OAIError("noSetHierarchy", "This repository has no sets at the moment.")
        records = filter_by_set(records, state.set_spec)
    granularities = set()
    if state.from_ is not None:
        lower, granularity = parse_bound(state.from_, upper=False)
        granularities.add(granularity)
        records = records.filter(harvest_changed_at__gte=lower)
    if state.until is not None:
        upper, granularity = parse_bound(state.until, upper=True)
        granularities.add(granularity)
        records = records.filter(harvest_changed_at__lt=upper)
    if len(granularities) > 1:
        raise OAIError("badArgument", "from and until must have the same granularity.")
    if state.from_ is not None and state.until is not None and lower >= upper:
        raise OAIError("badArgument", "from must not be later than until.")
    if state.last_key is not None:
        last, last_id = state.last_key
        # (datestamp, id) > (last, last_id); the first term lets the (harvest_changed_at,
        # id) index bound the scan.
        records = records.filter(
            Q(harvest_changed_at__gte=last) & (Q(harvest_changed_at__gt=last) | Q(id__gt=last_id))
        )
    return records.order_by("harvest_changed_at", "id")


# --- Response building ---------------------------------------------------------------------


def _sub(parent, tag: str, text: str | None = None, **attrs) -> ET.Element:
    # OAI-PMH elements are left unqualified under a default namespace declared on the
    # root (below), so no global ElementTree prefix registration is needed.
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def envelope(request, arguments: dict[str, str]) -> ET.Element:
    root = ET.Element(
        "OAI-PMH",
        {
            "xmlns": OAI,
            f"{{{XSI}}}schemaLocation": f"{OAI} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd",
        },
    )
    _sub(root, "responseDate", datestamp(timezone.now()))
    _sub(root, "request", base_url(request), **arguments)
    return root


def base_url(request) -> str:
    return request.build_absolute_uri(request.path)


def xml_response(root: ET.Element) -> HttpResponse:
    body = ET.tostring(root, encoding="unicode")
    content = '<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return HttpResponse(content.encode(), content_type="text/xml; charset=utf-8")


def header(parent, record: DmpRecord) -> None:
    """The header of an item of ``stamps.items()``: deleted unless live."""
    attrs = {} if record.is_live else {"status": "deleted"}
    element = _sub(parent, "header", **attrs)
    _sub(element, "identifier", oai_identifier(record.pk))
    _sub(element, "datestamp", datestamp(record.harvest_changed_at))
    for spec in set_specs(record.project):
        _sub(element, "setSpec", spec)


def record_element(parent, request, record, metadata_format, files, versions) -> None:
    """One item of a list or GetRecord; ``files`` and ``versions`` (what
    :func:`public_files` and :func:`published` read) are by record."""
    element = _sub(parent, "record")
    header(element, record)
    if not record.is_live:
        return
    facts = RecordFacts(
        record,
        landing_url=signposts.landing_url(request, record.pk),
        files=files.get(record.pk, []),
        published=versions.get(record.pk, Published()),
    )
    _sub(element, "metadata").append(metadata_format.element(facts))


def metadata_format_of(prefix: str) -> exports.OaiFormat:
    metadata_format = exports.harvested_format(prefix)
    if metadata_format is None:
        raise OAIError("cannotDisseminateFormat", "This metadata format is not supported.")
    return metadata_format


def files_for(request, records: list[DmpRecord], metadata_format) -> dict:
    """The live records' public files if ``metadata_format`` lists them (else none are read)."""
    if not metadata_format.lists_files:
        return {}
    return public_files(request, [record for record in records if record.is_live])


# --- Verbs ---------------------------------------------------------------------------------


def identify(request, root, arguments) -> None:
    element = _sub(root, "Identify")
    earliest = stamps.items().aggregate(earliest=Min("harvest_changed_at"))["earliest"]
    _sub(element, "repositoryName", getattr(settings, "KURA_OAI_REPOSITORY_NAME", "Kura"))
    _sub(element, "baseURL", base_url(request))
    _sub(element, "protocolVersion", "2.0")
    _sub(element, "adminEmail", settings.KURA_OAI_ADMIN_EMAIL)
    _sub(element, "earliestDatestamp", datestamp(earliest or timezone.now()))
    _sub(element, "deletedRecord", "persistent")
    _sub(element, "granularity", "YYYY-MM-DDThh:mm:ssZ")
    # The identifiers follow the oai-identifier scheme (oai:<domain>:record/<id>).
    description = _sub(_sub(element, "description"), "oai-identifier")
    description.set("xmlns", OAI_IDENTIFIER)
    description.set(
        f"{{{XSI}}}schemaLocation",
        f"{OAI_IDENTIFIER} http://www.openarchives.org/OAI/2.0/oai-identifier.xsd",
    )
    _sub(description, "scheme", "oai")
    _sub(description, "repositoryIdentifier", repository_id())
    _sub(description, "delimiter", ":")
    _sub(description, "sampleIdentifier", oai_identifier(1))


def list_metadata_formats(request, root, arguments) -> None:
    if "identifier" in arguments:
        pk = record_pk(arguments["identifier"])
        if not stamps.items().filter(pk=pk).exists():
            raise OAIError("idDoesNotExist", "No item has this identifier.")
    element = _sub(root, "ListMetadataFormats")
    for metadata_format in exports.harvested_formats():
        entry = _sub(element, "metadataFormat")
        _sub(entry, "metadataPrefix", metadata_format.prefix)
        _sub(entry, "schema", metadata_format.schema)
        _sub(entry, "metadataNamespace", metadata_format.namespace)


def list_sets(request, root, arguments) -> None:
    if "resumptionToken" in arguments:  # the set list always fits on one page
        raise OAIError("badResumptionToken", "The resumption token is invalid.")
    projects = (
        Project.objects.filter(Exists(harvestable().filter(project=OuterRef("pk"))))
        .order_by("pk")
        .only(
            "pk",
            "name_ja",
            "name_en",
            "funder",
            "funding_stream_code",
            "program_name_ja",
            "program_name_en",
        )
    )
    sets: dict[str, str] = {}
    for project in projects:
        funder = FUNDERS[project.funder] if project.funder in FUNDERS else None
        sets.setdefault(f"program:{project.funder}", funder.label_en if funder else project.funder)
        if project.funding_stream_code:
            sets.setdefault(
                f"program:{project.funder}:{project.funding_stream_code}",
                project.program_name_en or project.program_name_ja or project.funding_stream_code,
            )
        sets[f"project:{project.pk}"] = project.name_en or project.name_ja
    if not sets:
        raise OAIError("noSetHierarchy", "This repository has no sets at the moment.")
    sets.update(PARENT_SETS)
    element = _sub(root, "ListSets")
    for spec in sorted(sets, key=lambda s: (s.split(":")[0], s)):
        entry = _sub(element, "set")
        _sub(entry, "setSpec", spec)
        _sub(entry, "setName", sets[spec])


def list_items(request, root, arguments, verb: str) -> None:
    if "resumptionToken" in arguments:
        try:
            state = tokens.decode(arguments["resumptionToken"], verb)
        except tokens.BadResumptionToken as exc:
            raise OAIError("badResumptionToken", "The resumption token is invalid.") from exc
    else:
        state = tokens.ListState(
            verb=verb,
            metadata_prefix=arguments["metadataPrefix"],
            set_spec=arguments.get("set"),
            from_=arguments.get("from"),
            until=arguments.get("until"),
        )
    metadata_format = metadata_format_of(state.metadata_prefix)
    size = page_size()
    records = list_records_query(state).select_related("project__institution")
    if verb == "ListRecords":
        records = records.prefetch_related("creators")
    page = list(records[: size + 1])
    if not page:
        raise OAIError("noRecordsMatch", "No records match these arguments.")
    more = len(page) > size
    page = page[:size]
    total = state.total
    if total is None and more and state.last_key is None:  # once per list, on its first page
        total = list_records_query(state).count()
    element = _sub(root, verb)
    if verb == "ListRecords":
        files = files_for(request, page, metadata_format)
        versions = published(request, [record for record in page if record.is_live])
        for record in page:
            record_element(element, request, record, metadata_format, files, versions)
    else:
        for record in page:
            header(element, record)
    # The list's size as counted on its first page, and how many items came before this page.
    counts = {"cursor": str(state.cursor)}
    if total is not None:
        counts["completeListSize"] = str(total)
    if more:
        last = page[-1]
        next_state = replace(
            state,
            last_updated=last.harvest_changed_at.isoformat(),
            last_id=last.pk,
            total=total,
            cursor=state.cursor + len(page),
        )
        _sub(element, "resumptionToken", tokens.encode(next_state), **counts)
    elif state.last_key is not None:
        _sub(element, "resumptionToken", "", **counts)


def get_record(request, root, arguments) -> None:
    pk = record_pk(arguments["identifier"])
    prefix = arguments["metadataPrefix"]
    record = (
        stamps.items()
        .select_related("project__institution")
        .prefetch_related("creators")
        .filter(pk=pk)
        .first()
    )
    if record is None:
        raise OAIError("idDoesNotExist", "No item has this identifier.")
    metadata_format = metadata_format_of(prefix)
    files = files_for(request, [record], metadata_format)
    versions = published(request, [record] if record.is_live else [])
    record_element(_sub(root, "GetRecord"), request, record, metadata_format, files, versions)


HANDLERS = {
    "Identify": identify,
    "ListMetadataFormats": list_metadata_formats,
    "ListSets": list_sets,
    "ListIdentifiers": lambda request, root, args: list_items(
        request, root, args, "ListIdentifiers"
    ),
    "ListRecords": lambda request, root, args: list_items(request, root, args, "ListRecords"),
    "GetRecord": get_record,
}


def check_arguments(query) -> tuple[str, dict[str, str]]:
    """The verb and its arguments, or an ``OAIError`` (``badVerb`` / ``badArgument``)."""
    verbs = query.getlist("verb")
    if len(verbs) != 1 or verbs[0] not in VERBS:
        raise OAIError("badVerb", "The verb is missing, repeated or not an OAI-PMH verb.")
    verb = verbs[0]
    required, optional = VERBS[verb]
    names = [name for name in query if name != "verb"]
    if any(len(query.getlist(name)) > 1 for name in names):
        raise OAIError("badArgument", "An argument is repeated.")
    arguments = {name: query[name] for name in names}
    if "resumptionToken" in arguments:
        if verb not in RESUMABLE:
            raise OAIError("badArgument", f"{verb} takes no resumptionToken.")
        if len(arguments) > 1:
            raise OAIError("badArgument", "resumptionToken is an exclusive argument.")
        return verb, arguments
    unknown = set(arguments) - required - optional
    if unknown:
        raise OAIError("badArgument", f"Illegal argument(s): {', '.join(sorted(unknown))}.")
    missing = required - set(arguments)
    if missing:
        raise OAIError("badArgument", f"Missing argument(s): {', '.join(sorted(missing))}.")
    return verb, arguments


@csrf_exempt
@require_http_methods(["GET", "POST"])
@statement_timeout
def endpoint(request) -> HttpResponse:
    query = request.POST if request.method == "POST" else request.GET
    try:
        verb, arguments = check_arguments(query)
    except OAIError as error:
        root = envelope(request, {})
        _sub(root, "error", error.message, code=error.code)
        return xml_response(root)
    root = envelope(request, {"verb": verb, **arguments})
    try:
        HANDLERS[verb](request, root, arguments)
    except OAIError as error:
        # The request element echoes arguments only when they were valid.
        echoed = {} if error.code in {"badVerb", "badArgument"} else {"verb": verb, **arguments}
        root = envelope(request, echoed)
        _sub(root, "error", error.message, code=error.code)
    return xml_response(root)
