"""The dashboard's tallies (repository/tally.py): the tables, and on PostgreSQL the trigger
that keeps them, filled from the objects already stored."""

import django.db.models.deletion
from django.db import migrations, models


def install(apps, schema_editor):
    """Nothing: 0008 makes the trigger and fills the tallies (``tally_rebuild`` makes them
    as the code has them now, which needs 0008's columns)."""


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from repository.tally import UNINSTALL_SQL

    for statement in UNINSTALL_SQL:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_api_tokens"),
        ("dmp", "0007_search_bigram_column"),
        ("repository", "0006_audit_trail_events"),
    ]

    operations = [
        migrations.CreateModel(
            name="MonthTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("month", models.DateField()),
                ("object_count", models.BigIntegerField(default=0)),
                ("byte_count", models.BigIntegerField(default=0)),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="accounts.project",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["project", "month"], name="monthtally_project_idx")
                ],
            },
        ),
        migrations.CreateModel(
            name="ObjectTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("tier", models.CharField(max_length=16)),
                ("checksum", models.CharField(max_length=16)),
                ("object_count", models.BigIntegerField(default=0)),
                ("byte_count", models.BigIntegerField(default=0)),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="accounts.project",
                    ),
                ),
                (
                    "record",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="dmp.dmprecord",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["project"], name="objecttally_project_idx")],
            },
        ),
        migrations.CreateModel(
            name="TallyDelta",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("tier", models.CharField(max_length=16)),
                ("checksum", models.CharField(max_length=16)),
                ("month", models.DateField()),
                ("object_count", models.IntegerField()),
                ("byte_count", models.BigIntegerField()),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="accounts.project",
                    ),
                ),
                (
                    "record",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="dmp.dmprecord",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["project"], name="tallydelta_project_idx")],
            },
        ),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
