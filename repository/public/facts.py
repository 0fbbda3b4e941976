"""Language-neutral facts about a record, shared by every export (DataCite, schema.org,
JPCOAR, citations). Each export maps these; none reads the models by itself."""

from dmp.models import DmpRecord

from .landing import cite_as, doi_of, keywords


def research_field(record: DmpRecord):
    return record.research_field_term


def licence(record: DmpRecord):
    return record.licence_term


def access_right(record: DmpRecord):
    return record.access_rights_term


def data_type(record: DmpRecord):
    return record.data_type_term


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


__all__ = ["cite_as", "doi_of", "keywords"]
