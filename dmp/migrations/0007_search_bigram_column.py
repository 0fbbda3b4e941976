"""The search's bigrams stored in a column, so that no query computes them row by row.

0005 indexed the expression ``kura_bigrams(UPPER(<searched columns>))``. The index found
the candidates of a rare term, but a term found in most records (データ, "dataset") made
PostgreSQL scan the table and evaluate that expression for every row, in the count, the
page and the facet query: 2.4 s at 20,000 records, 13 s at 100,000. Here the bigrams
become a stored generated column, ``search_bigrams``, computed once when a record is
written, with a GIN index of its own; the prefilter
(``repository.search.selectors.BigramPrefilter``) compares the column, so a scan costs a
comparison of two small arrays per row (45 ms at 20,000 records) and a selective term still
uses the index. The expression index of 0005 is dropped.

Adding the column rewrites the table once (seconds for 100,000 records). The embedded
profile (SQLite) migrates without it, as without 0005.
"""

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
COLUMN = "search_bigrams"
INDEX_NAME = "dmprecord_search_bigrams"
OLD_INDEX_NAME = "dmprecord_search_bigram"


def _concatenation(quote) -> str:
    return " || chr(1) || ".join(quote(column) for column in SEARCHED_COLUMNS)


def add_bigram_column(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    table = quote("dmp_dmprecord")
    schema_editor.execute(f"DROP INDEX IF EXISTS {quote(OLD_INDEX_NAME)}")
    schema_editor.execute(
        f"ALTER TABLE {table} ADD COLUMN {quote(COLUMN)} text[] GENERATED ALWAYS AS "
        f"(kura_bigrams(UPPER({_concatenation(quote)}))) STORED"
    )
    schema_editor.execute(
        f"CREATE INDEX {quote(INDEX_NAME)} ON {table} USING gin ({quote(COLUMN)})"
    )


def drop_bigram_column(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    table = quote("dmp_dmprecord")
    schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {quote(COLUMN)}")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(OLD_INDEX_NAME)} ON {table} "
        f"USING gin ((kura_bigrams(UPPER({_concatenation(quote)}))))"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dmp", "0006_dmphard_repo_link_validator"),
    ]

    operations = [
        migrations.RunPython(add_bigram_column, drop_bigram_column, elidable=False),
    ]
