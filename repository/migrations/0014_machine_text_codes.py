"""Sentences Kura wrote itself are stored as codes, read in the reader's language
(core/machine_text.py): the fields become ``MachineTextField`` and the known English
sentences already stored in the tier requests' reasons, the fixity checks' details and the
quarantine reasons are moved to their codes. A value that is not wholly made of known
sentences (a person's words) is left as it is. The audit trail is append-only and keeps
the words it was written with; its new events are written as codes."""

from django.db import migrations

import core.machine_text

# The automatic reason was translated when the request was written: its Japanese text too.
REQUESTED_AT_UPLOAD_JA = "ファイルのアップロード時に申請されました。"

FIELDS = [
    ("tierchangerequest", "reason"),
    ("fixitycheck", "detail"),
    ("dataobject", "quarantine_reason"),
]


def to_codes(apps, schema_editor):
    from core.machine_text import MachineText, Message, from_english

    for model_name, field_name in FIELDS:
        model = apps.get_model("repository", model_name)
        rows = (
            model.objects.exclude(**{field_name: ""})
            .exclude(**{f"{field_name}__startswith": core.machine_text.PREFIX})
            .values_list("pk", field_name)
        )
        for pk, text in rows.iterator():
            text = str(text)
            if text.strip() == REQUESTED_AT_UPLOAD_JA:
                coded = MachineText(Message("tier.requested_at_upload"))
            else:
                coded = from_english(text)
            if coded is not None:
                model.objects.filter(pk=pk).update(**{field_name: coded})


def to_english(apps, schema_editor):
    for model_name, field_name in FIELDS:
        model = apps.get_model("repository", model_name)
        rows = model.objects.filter(**{f"{field_name}__startswith": core.machine_text.PREFIX})
        for pk, coded in rows.values_list("pk", field_name).iterator():
            if isinstance(coded, core.machine_text.MachineText):
                model.objects.filter(pk=pk).update(**{field_name: coded.english()})


class Migration(migrations.Migration):
    dependencies = [
        ("repository", "0013_usage_events"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="detail",
            field=core.machine_text.MachineTextField(blank=True, verbose_name="detail"),
        ),
        migrations.AlterField(
            model_name="dataobject",
            name="quarantine_reason",
            field=core.machine_text.MachineTextField(blank=True, verbose_name="quarantine reason"),
        ),
        migrations.AlterField(
            model_name="fixitycheck",
            name="detail",
            field=core.machine_text.MachineTextField(blank=True, verbose_name="detail"),
        ),
        migrations.AlterField(
            model_name="tierchangerequest",
            name="reason",
            field=core.machine_text.MachineTextField(blank=True, verbose_name="reason"),
        ),
        migrations.RunPython(to_codes, to_english),
    ]
