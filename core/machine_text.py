"""Sentences Kura writes itself, stored as codes and read in the reader's language.

An automatic reason ("Requested when the file was uploaded."), a fixity check's detail or a
quarantine's reason is written by Kura, not by a person, so it is stored as a code with its
values (:class:`Message`), never as an English sentence: a page, the API or a CSV renders
it in the language of whoever reads it. Text a person typed (a requester's reason, a
curator's comment) is stored as typed; a :class:`MachineText` may hold both, in order.

:class:`MachineTextField` is the model field that stores either: a :class:`MachineText` is
kept as ``kura:`` followed by JSON (``kura:[["fixity.verified_after_upload", {}]]``), and
it comes back from the database as a :class:`MachineText` whose ``str()`` is in the active
language. Plain text comes back as it was stored. :data:`MESSAGES` is the catalogue of
codes; :func:`from_english` reads the sentences of older rows back into codes (the data
migration that moved them, and nothing else, uses it).
"""

import json
import re
from dataclasses import dataclass, field

from django.db import models
from django.utils.translation import gettext, gettext_noop

PREFIX = "kura:"

# code -> the English template (its msgid). A code, once stored, is never renamed; the
# English wording may change (the .po follows), the rows do not need to.
MESSAGES: dict[str, str] = {
    "tier.requested_at_upload": gettext_noop("Requested when the file was uploaded."),
    "tier.request_approved": gettext_noop("Approved request #%(request)s."),
    "tier.embargo_lifted": gettext_noop("The available date has come."),
    "tier.cancelled_tier_changed": gettext_noop(
        "Cancelled: the access tier was changed directly (%(names)s)."
    ),
    "tier.cancelled_object_deleted": gettext_noop("Cancelled: the object was deleted (%(name)s)."),
    "fixity.demo_loaded": gettext_noop("Read back from storage when the demo data was loaded."),
    "fixity.verification_after_upload": gettext_noop("Verification after upload."),
    "fixity.verified_after_upload": gettext_noop("Verified after upload."),
    "fixity.storage_unanswered": gettext_noop(
        "The storage did not answer; the check will be repeated."
    ),
    "fixity.reverify_match": gettext_noop(
        "Re-verified at a curator's request: the stored bytes match the recorded checksums."
    ),
    "fixity.reverify_mismatch": gettext_noop("Re-verified at a curator's request:"),
    "fixity.reverify_error": gettext_noop(
        "Re-verification at a curator's request failed: the storage did not answer. "
        "The object stays quarantined; ask again later."
    ),
    "fixity.size_mismatch": gettext_noop(
        "Size mismatch: %(stored)s bytes are stored, the upload declared %(expected)s."
    ),
    "fixity.client_sha256_mismatch": gettext_noop(
        "SHA-256 mismatch: the stored bytes do not match the SHA-256 given by the uploader."
    ),
    "fixity.checksums_changed": gettext_noop(
        "Fixity check failed: the stored bytes no longer match the checksums recorded on %(date)s."
    ),
    "fixity.missing": gettext_noop("Fixity check failed: the stored file is missing."),
    # Why an object has no preview (repository/previews/), stored in ``DataObject.preview``.
    "preview.too_large": gettext_noop(
        "The image is %(width)s × %(height)s pixels, more than Kura previews."
    ),
    "preview.frame_too_large": gettext_noop(
        "The DICOM frame is %(width)s × %(height)s pixels, more than Kura decodes for a preview."
    ),
    "preview.no_decoder": gettext_noop(
        "Kura has no decoder for this DICOM file's pixel encoding (%(encoding)s); "
        "download the file to view it."
    ),
    "preview.no_whole_image": gettext_noop("The image's pyramid has no whole-image level."),
    "preview.unreadable": gettext_noop("The file could not be read (%(error)s)."),
    # Why a CRAM's summary has no reads per reference (stored in its summary).
    "preview.cram_count_too_large": gettext_noop(
        "Reads per reference are counted for CRAM files of up to %(limit)s; this file is %(size)s."
    ),
    "preview.cram_count_off": gettext_noop(
        "Reads per reference are not counted for CRAM files on this server."
    ),
    "preview.cram_count_unreadable": gettext_noop(
        "Reads per reference could not be counted: the file could not be read to its end "
        "(%(error)s)."
    ),
}


@dataclass(frozen=True)
class Message:
    """One sentence Kura writes: a code of :data:`MESSAGES` and its values."""

    code: str
    values: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.code not in MESSAGES:
            raise ValueError(f"unknown message code {self.code!r}")

    @property
    def template(self) -> str:
        return MESSAGES[self.code]

    def __str__(self) -> str:
        """The sentence in the active language."""
        return gettext(self.template) % self.values

    def english(self) -> str:
        return self.template % self.values


class MachineText(str):
    """Messages and typed text in order, read as one paragraph: ``str()`` (and so every
    page, API answer and CSV) in the active language; as a string it is the English text,
    so code that handles it as text (JSON, comparisons, searches in logs) sees one stable
    value."""

    def __new__(cls, *parts: "Message | MachineText | str"):
        flat: list[Message | str] = []
        for part in parts:
            if isinstance(part, MachineText):
                flat.extend(part.parts)
            elif isinstance(part, Message):
                flat.append(part)
            elif str(part).strip():
                flat.append(str(part).strip())
        english = " ".join(p.english() if isinstance(p, Message) else p for p in flat)
        text = super().__new__(cls, english)
        text.parts = tuple(flat)
        return text

    def __str__(self) -> str:
        return " ".join(str(part) for part in self.parts)

    def english(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"MachineText{self.parts!r}"

    def __reduce__(self):
        return (MachineText, self.parts)

    @property
    def codes(self) -> list[str]:
        return [part.code for part in self.parts if isinstance(part, Message)]

    def stored(self) -> str:
        """The database's form: ``kura:`` and the parts as JSON."""
        payload = [[p.code, p.values] if isinstance(p, Message) else p for p in self.parts]
        return PREFIX + json.dumps(payload, ensure_ascii=False, sort_keys=True)


def parse(value: str) -> "MachineText | str":
    """A stored value: a :class:`MachineText` when it is one, else the text as stored."""
    if not value.startswith(PREFIX):
        return value
    try:
        payload = json.loads(value[len(PREFIX) :])
        parts = [
            Message(part[0], dict(part[1])) if isinstance(part, list) else str(part)
            for part in payload
        ]
    except (ValueError, TypeError, IndexError, KeyError):
        return value
    return MachineText(*parts)


def _pattern(template: str) -> re.Pattern:
    names = re.findall(r"%\((\w+)\)s", template)
    pattern = re.escape(template)
    for name in names:
        pattern = pattern.replace(re.escape(f"%({name})s"), f"(?P<{name}>\\S+?)", 1)
    return re.compile(pattern)


_PATTERNS = {code: _pattern(template) for code, template in MESSAGES.items()}


def from_english(text: str, *, codes: list[str] | None = None) -> MachineText | None:
    """``text`` read back as a sequence of the English sentences of ``codes`` (all by
    default), or ``None`` when some of it is not one of them: older rows stored the
    sentences themselves, and a row is moved only when every word of it is accounted for."""
    rest = text.strip()
    if not rest:
        return None
    parts: list[Message] = []
    candidates = codes or list(MESSAGES)
    while rest:
        for code in candidates:
            matched = _PATTERNS[code].match(rest)
            if matched and (matched.end() == len(rest) or rest[matched.end()] == " "):
                parts.append(Message(code, matched.groupdict()))
                rest = rest[matched.end() :].lstrip()
                break
        else:
            return None
    return MachineText(*parts)


class MachineTextField(models.TextField):
    """A text field that keeps a :class:`MachineText` as codes and gives it back as one;
    typed text is kept as typed (text that merely looks like codes is kept as typed text
    inside codes, so it is never read as a sentence Kura wrote)."""

    def from_db_value(self, value, expression, connection):
        return value if value is None else parse(value)

    def to_python(self, value):
        if isinstance(value, MachineText) or value is None:
            return value
        if isinstance(value, Message):
            return MachineText(value)
        return parse(str(value))

    def get_prep_value(self, value):
        if isinstance(value, Message):
            value = MachineText(value)
        if isinstance(value, MachineText):
            return value.stored() if value.parts else ""
        if value is None:
            return None
        value = str(value)  # a lazy translation too
        if value.startswith(PREFIX):
            return MachineText(value).stored()
        return value

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return value.stored() if isinstance(value, MachineText) else value
