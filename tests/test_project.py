"""Project-wide promises: migrations match the models, checks pass, the catalogue is whole."""

import gettext
import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "locale" / "ja" / "LC_MESSAGES"


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_system_checks_pass():
    out = io.StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


def _po_entries(text: str) -> list[tuple[str, str, str, bool]]:
    """(context, msgid, msgstr, is_plural) for every entry but the header; plurals keep [0]."""
    entries = []
    for block in text.split("\n\n"):
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', block, re.M)
        msgstr = re.search(r"^msgstr(?:\[0\])? ((?:\".*\"\n?)+)", block, re.M)
        if not msgid or not msgstr:
            continue
        key = "".join(re.findall(r'"(.*)"', msgid.group(1)))
        if not key:
            continue
        value = "" if "#, fuzzy" in block else "".join(re.findall(r'"(.*)"', msgstr.group(1)))
        context = re.search(r'^msgctxt "(.*)"', block, re.M)
        entries.append((context.group(1) if context else "", key, value, "msgid_plural" in block))
    return entries


def test_japanese_catalogue_is_complete_and_compiled():
    entries = _po_entries((CATALOGUE / "django.po").read_text(encoding="utf-8"))
    untranslated = sorted(key for _, key, value, _ in entries if not value)
    assert len(entries) > 50
    assert untranslated == []

    with open(CATALOGUE / "django.mo", "rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = [
        key
        for context, key, value, plural in entries
        if not plural
        and "\\" not in key + value
        and (compiled.pgettext(context, key) if context else compiled.gettext(key)) != value
    ]
    assert stale == [], "django.mo is older than django.po: run compilemessages"
