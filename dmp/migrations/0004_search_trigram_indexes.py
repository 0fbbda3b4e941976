"""Trigram (pg_trgm) GIN indexes for the dataset search on PostgreSQL.

Japanese has no word boundaries, so the search matches substrings (``icontains``). On
PostgreSQL Django writes that as ``UPPER(col::text) LIKE UPPER('%term%')``; a GIN index on
the same expression with ``gin_trgm_ops`` serves it. The indexes live here rather than in
``Meta.indexes`` so the embedded profile (SQLite) migrates without them.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

SEARCHED_COLUMNS = (
    "title_ja",
    "title_en",
    "description_ja",
    "description_en",
    "keywords_ja",
    "keywords_en",
    "data_number",
)


def _index_name(column: str) -> str:
    return f"dmprecord_{column}_trgm"


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name("dmp_dmprecord")
    for column in SEARCHED_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(_index_name(column))} "
            f"ON {table} USING gin ((UPPER({schema_editor.quote_name(column)}::text)) gin_trgm_ops)"
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED_COLUMNS:
        schema_editor.execute(
            f"DROP INDEX IF EXISTS {schema_editor.quote_name(_index_name(column))}"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("dmp", "0003_keywords_withdrawal_datestamp"),
    ]

    operations = [
        # Skips itself on databases other than PostgreSQL.
        TrigramExtension(),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes, elidable=False),
    ]
