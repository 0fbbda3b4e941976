"""Checks on values that leave Kura inside other formats: a record's repository/DOI link
goes into the landing page's ``Link`` header, citation files and harvested metadata."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# A DOI: "10.", a registrant code of 4–9 digits, "/", a suffix. The suffix may be almost
# anything by the DOI handbook, but never whitespace, control characters, <, >, quotes or
# backslashes here: those are how a value breaks out of a header's <…> or a citation
# field (a DOI that really holds one is written percent-encoded).
DOI_PATTERN = r"10\.\d{4,9}/[^\s<>\"'\\\x00-\x1f\x7f]+"
# The forms of a DOI link Kura accepts (and reads a DOI from).
DOI_LINK_RE = re.compile(r"^https?://(?:dx\.)?doi\.org/(" + DOI_PATTERN + ")$", re.IGNORECASE)
_DOI_HOST_RE = re.compile(r"^https?://(?:dx\.)?doi\.org(?:[/:?#]|$)", re.IGNORECASE)
_BREAKOUT_RE = re.compile(r"[\s<>\"'\\\x00-\x1f\x7f]")


def repo_link_validate(value: str) -> None:
    """Refuse a repository link that could break out of the places it is written into,
    and a doi.org link that does not hold a DOI."""
    if _BREAKOUT_RE.search(value):
        raise ValidationError(
            _("A link may not contain spaces, <, >, quotes or backslashes."), code="unsafe_link"
        )
    if _DOI_HOST_RE.match(value) and not DOI_LINK_RE.match(value):
        raise ValidationError(
            _("This is not a DOI link: write it as https://doi.org/10.NNNN/suffix."),
            code="invalid_doi",
        )
