"""Language-neutral facts about a record, shared by every export (DataCite, schema.org,
JPCOAR, Dublin Core, citations, BagIt) and the landing page.

A serialiser is handed one :class:`RecordFacts` and reads the record only through it:
none reads the models by itself. The facts query nothing either; the record should come
with ``project__institution`` selected and ``creators`` prefetched (as
:func:`~repository.discovery.public.landing.record_for_landing` and the OAI-PMH lists load it).
"""

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from core.tiers import dated_tiers
from core.vocabularies import FUNDERS
from dmp.models import DmpRecord
from dmp.validators import DOI_PATTERN
from repository.discovery.public.landing import PublicFile, Published, doi_url

# The DOI pattern refuses whitespace, <, >, quotes and backslashes: a record stored before
# links were validated may hold them, and its "DOI" must not reach a header or citation.
DOI_RE = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)(" + DOI_PATTERN + ")$", re.IGNORECASE)

# NII's researcher resolver: the NRID of a researcher is "10000" and the eight digits of
# the e-Rad researcher number (e.g. 1000090311208 for 90311208).
NRID_PREFIX = "https://nrid.nii.ac.jp/nrid/10000"
ERAD_RE = re.compile(r"^[0-9]{8}$")
ORCID_PREFIX = "https://orcid.org/"
ORCID_RE = re.compile(r"^[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9X]$")


def english_first(ja: str, en: str) -> str:
    return en or ja


def in_language(ja: str, en: str, language: str) -> str:
    """The value in ``language`` (a language code), falling back to the other one."""
    return (ja or en) if language.startswith("ja") else (en or ja)


@dataclass(frozen=True)
class Person:
    """A creator or the data manager: names, e-Rad researcher number, affiliation, and (for
    a creator whose Kura account verified one by signing in with ORCID) the ORCID iD."""

    name_ja: str = ""
    name_en: str = ""
    erad: str = ""
    affiliation_ja: str = ""
    affiliation_en: str = ""
    orcid: str = ""

    @property
    def name(self) -> str:
        return english_first(self.name_ja, self.name_en)

    @property
    def affiliation(self) -> str:
        return english_first(self.affiliation_ja, self.affiliation_en)

    @property
    def orcid_uri(self) -> str:
        return f"{ORCID_PREFIX}{self.orcid}" if ORCID_RE.match(self.orcid) else ""

    @property
    def nrid_uri(self) -> str:
        """The KAKEN researcher identifier (NRID) that NII's researcher resolver keys by
        the e-Rad researcher number, or ``""``."""
        return f"{NRID_PREFIX}{self.erad}" if ERAD_RE.match(self.erad) else ""

    @property
    def uri(self) -> str:
        """The person's researcher URI, or ``""``: the verified ORCID iD where there is one
        (what DataCite, RO-Crate and Signposting readers resolve first), else the NRID."""
        return self.orcid_uri or self.nrid_uri


CROSSREF_FUNDER = "crossref"
ERAD_FUNDER = "e-rad"


@dataclass(frozen=True)
class FunderId:
    """How a funder is identified: its Crossref Funder ID where Kura knows one (``scheme``
    :data:`CROSSREF_FUNDER`, ``value`` the DOI URL), else its e-Rad funder code
    (:data:`ERAD_FUNDER`). Each format names the scheme in its own vocabulary."""

    scheme: str
    value: str


@dataclass(frozen=True)
class Funding:
    """Who funds the record's project, through which program, under which grant."""

    funder: object  # the e-Rad funder term, or None for a code Kura does not know
    stream_code: str
    program_ja: str
    program_en: str
    grant_number: str
    project_ja: str
    project_en: str

    @property
    def funder_name(self) -> str:
        if self.funder is None:  # a code the vocabulary does not know
            return ""
        return self.funder.label_en or self.funder.label_ja

    @property
    def project_name(self) -> str:
        return english_first(self.project_ja, self.project_en)

    @property
    def funder_id(self) -> FunderId | None:
        funder = self.funder
        if funder is None:
            return None
        if funder.crossref_funder_id:
            return FunderId(CROSSREF_FUNDER, f"https://doi.org/{funder.crossref_funder_id}")
        return FunderId(ERAD_FUNDER, funder.erad_code) if funder.erad_code else None


class RecordFacts:
    """One record as the public sees it at ``landing_url``, with the ``files`` anyone may
    download (already limited by the access rules), the catalogue's address and what
    publication adds (``published``: a live record's versions and concept DOI, or a
    version's concept and predecessor); ``version``: the number of the published version
    these facts are (``""`` for the live record)."""

    def __init__(
        self,
        record: DmpRecord,
        *,
        landing_url: str,
        files: Iterable[PublicFile] = (),
        catalog_url: str = "",
        published: Published = Published(),  # noqa: B008 - frozen, shared safely
        version: str = "",
    ):
        self._record = record
        self.landing_url = landing_url
        self.files = list(files)
        self.catalog_url = catalog_url
        self.concept_doi = published.concept_doi
        self.versions = list(published.versions)
        self.version_of = published.version_of
        self.previous_version = published.previous
        self.version = version
        self.pk = record.pk
        self.data_number = record.data_number
        self.title_ja, self.title_en = record.title_ja, record.title_en
        self.description_ja = record.description_ja
        self.description_en = record.description_en
        self.keywords_ja = record.keyword_list("ja")
        self.keywords_en = record.keyword_list("en")
        self.date_issued = record.date_issued_updated  # as declared; may be empty
        self.updated_at = record.updated_at
        self.declared_size = record.file_size
        self.free_of_charge = record.data_policy_free == "free"
        self.research_field = record.research_field_term
        self.data_type = record.data_type_term
        self.licence = record.licence_term
        self.access_right = record.access_rights_term
        self.publisher_ror = self._ror()

    # --- identity ---------------------------------------------------------------------

    @property
    def title(self) -> str:
        return english_first(self.title_ja, self.title_en)

    @cached_property
    def doi(self) -> str:
        """The bare DOI (``10.x/y``): the concept DOI once Kura has made it findable, else
        the repository link if it is a DOI, else ``""``."""
        if self.concept_doi:
            return self.concept_doi
        match = DOI_RE.match((self._record.repo_url_doi_link or "").strip())
        return match.group(1) if match else ""

    @property
    def cite_as(self) -> str:
        """What to cite: the DOI if the record has one, else its landing page (a local
        identifier is no persistent one)."""
        return doi_url(self.doi) if self.doi else self.landing_url

    @property
    def keywords(self) -> list[str]:
        """Both languages' keywords, each once (a new list on every read)."""
        return list(dict.fromkeys(self.keywords_ja + self.keywords_en))

    # --- dates ------------------------------------------------------------------------

    @property
    def publication_date(self) -> datetime.date:
        return self.date_issued or self._record.created_at.date()

    @property
    def embargo_date(self) -> datetime.date | None:
        """When an embargoed record's data opens; ``None`` for any other record."""
        record = self._record
        return record.available_date if record.access_rights in dated_tiers() else None

    # --- people and organisations -----------------------------------------------------

    @cached_property
    def creators(self) -> list[Person]:
        return [
            Person(
                c.name_ja,
                c.name_en,
                c.erad_researcher_number,
                c.affiliation_ja,
                c.affiliation_en,
                orcid=c.orcid,
            )
            for c in self._record.creators.all()
        ]

    @cached_property
    def data_manager(self) -> Person:
        """Names, e-Rad number and organisation only: contact details are never exported."""
        r = self._record
        return Person(
            r.data_man_name_ja,
            r.data_man_name_en,
            r.data_man_number,
            r.data_man_org_ja,
            r.data_man_org_en,
        )

    @cached_property
    def publisher_names(self) -> tuple[str, str]:
        """(ja, en) name of the hosting institution, else the project's institution."""
        record, institution = self._record, self._record.project.institution
        ja = record.hosting_inst_ja or (institution.name_ja if institution else "")
        en = record.hosting_inst_en or (institution.name_en if institution else "")
        return ja, en

    @property
    def publisher(self) -> str:
        ja, en = self.publisher_names
        return english_first(ja, en)

    def _ror(self) -> str:
        institution = self._record.project.institution
        return self._record.hosting_inst_id or (institution.ror_id if institution else "")

    @cached_property
    def funding(self) -> Funding:
        project = self._record.project
        return Funding(
            funder=FUNDERS[project.funder] if project.funder in FUNDERS else None,
            stream_code=project.funding_stream_code,
            program_ja=project.program_name_ja,
            program_en=project.program_name_en,
            grant_number=project.japan_grant_number,
            project_ja=project.name_ja,
            project_en=project.name_en,
        )

    @property
    def funder(self):
        return self.funding.funder
