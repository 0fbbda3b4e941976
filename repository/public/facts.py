"""Language-neutral facts about a record, shared by every export (DataCite, schema.org,
JPCOAR, citations). Each export maps these; none reads the models by itself."""

from dmp.models import DmpRecord
from dmp.vocabularies import (
    ACCESS_RIGHTS,
    DATA_TYPES,
    LICENSES,
    RESEARCH_FIELDS,
    SAME_AS_PROJECT,
)

from .landing import doi_of, keywords


def research_field(record: DmpRecord):
    code = record.data_research_field
    if code == SAME_AS_PROJECT:
        code = record.project.research_field
    return RESEARCH_FIELDS[code] if code in RESEARCH_FIELDS else None


def licence(record: DmpRecord):
    code = record.data_policy_license
    return LICENSES[code] if code in LICENSES else None


def access_right(record: DmpRecord):
    return ACCESS_RIGHTS[record.access_rights]


def data_type(record: DmpRecord):
    return DATA_TYPES[record.data_type] if record.data_type in DATA_TYPES else None


def funder(record: DmpRecord):
    return record.project.funder_term


def publisher_names(record: DmpRecord) -> tuple[str, str]:
    """(ja, en) name of the hosting institution, falling back to the project's institution."""
    institution = record.project.institution
    ja = record.hosting_inst_ja or (institution.name_ja if institution else "")
    en = record.hosting_inst_en or (institution.name_en if institution else "")
    return ja, en


def publisher_ror(record: DmpRecord) -> str:
    institution = record.project.institution
    return record.hosting_inst_id or (institution.ror_id if institution else "")


def publication_date(record: DmpRecord):
    return record.date_issued_updated or record.created_at.date()


def creators(record: DmpRecord) -> list:
    return list(record.creators.all())


def english_first(ja: str, en: str) -> str:
    return en or ja


__all__ = ["doi_of", "keywords"]
