"""A request's decision comment may be Kura's own sentence (core/machine_text.py): when Kura
cancels a pending tier change request itself (the tier was changed directly, or the object
was deleted) it now stores a code, read in the reader's language. The field becomes a
``MachineTextField`` and the two English sentences already stored in tier change requests
are moved to their codes; a curator's or steward's words are left as they are. (The audit
trail is append-only and keeps the words it was written with.)"""

import re

from django.db import migrations

import core.machine_text

# The sentences as Kura wrote them, file names and all (a name may hold spaces or commas,
# which core.machine_text.from_english does not read into a value).
SENTENCES = [
    (
        "tier.cancelled_tier_changed",
        re.compile(r"Cancelled: the access tier was changed directly \((?P<names>.+)\)\."),
    ),
    (
        "tier.cancelled_object_deleted",
        re.compile(r"Cancelled: the object was deleted \((?P<name>.+)\)\."),
    ),
]


def coded(text: str):
    from core.machine_text import MachineText, Message

    for code, pattern in SENTENCES:
        matched = pattern.fullmatch(text.strip())
        if matched:
            return MachineText(Message(code, matched.groupdict()))
    return None


def to_codes(apps, schema_editor):
    model = apps.get_model("repository", "TierChangeRequest")
    rows = model.objects.filter(decision_comment__startswith="Cancelled: ").values_list(
        "pk", "decision_comment"
    )
    for pk, text in rows.iterator():
        comment = coded(str(text))
        if comment is not None:
            model.objects.filter(pk=pk).update(decision_comment=comment)


def to_english(apps, schema_editor):
    model = apps.get_model("repository", "TierChangeRequest")
    rows = model.objects.filter(decision_comment__startswith=core.machine_text.PREFIX)
    for pk, comment in rows.values_list("pk", "decision_comment").iterator():
        if isinstance(comment, core.machine_text.MachineText):
            model.objects.filter(pk=pk).update(decision_comment=comment.english())


class Migration(migrations.Migration):
    dependencies = [
        ("repository", "0016_preview_skipped_label"),
    ]

    operations = [
        migrations.AlterField(
            model_name="accessrequest",
            name="decision_comment",
            field=core.machine_text.MachineTextField(blank=True, verbose_name="decision comment"),
        ),
        migrations.AlterField(
            model_name="tierchangerequest",
            name="decision_comment",
            field=core.machine_text.MachineTextField(blank=True, verbose_name="decision comment"),
        ),
        migrations.RunPython(to_codes, to_english),
    ]
