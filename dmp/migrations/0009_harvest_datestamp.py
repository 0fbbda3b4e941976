from django.db import migrations, models


def stamp_open_records(apps, schema_editor):
    """Records harvesters may read today are items from their last update on (the
    datestamp they had); the rest become items when first opened."""
    DmpRecord = apps.get_model("dmp", "DmpRecord")
    DmpRecord.objects.filter(metadata_access="open").update(
        harvest_changed_at=models.F("updated_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_api_tokens"),
        ("dmp", "0008_title_upper_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="dmprecord",
            name="harvest_changed_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="harvest datestamp"
            ),
        ),
        migrations.RunPython(stamp_open_records, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="dmprecord",
            index=models.Index(fields=["harvest_changed_at", "id"], name="dmprecord_harvest_idx"),
        ),
    ]
