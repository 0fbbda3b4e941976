"""A bigram GIN index for the dataset search on PostgreSQL (what pg_bigm does, without it).

Most Japanese search words are one or two characters long. pg_trgm (0004) cannot serve a
term shorter than three characters, so such a search read every record. This migration adds
``kura_bigrams(text)``, the array of the distinct two-character substrings of its argument,
and a GIN index on the bigrams of the upper-cased concatenation of the searched columns
(separated by ``chr(1)``). ``repository.search.selectors`` adds, for each term of two or more
characters, ``kura_bigrams(UPPER(<the same concatenation>)) @> kura_bigrams(UPPER(term))``
as a prefilter in front of the exact ``icontains`` checks. The query writes the expression
exactly as the index below does, or the planner would not use the index.

The embedded profile (SQLite) migrates without either.
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
INDEX_NAME = "dmprecord_search_bigram"

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION kura_bigrams(text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(DISTINCT substr($1, i, 2)), '{}')
    FROM generate_series(1, char_length($1) - 1) AS i
$$
"""


def create_bigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    text = " || chr(1) || ".join(quote(column) for column in SEARCHED_COLUMNS)
    schema_editor.execute(CREATE_FUNCTION)
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(INDEX_NAME)} ON {quote('dmp_dmprecord')} "
        f"USING gin ((kura_bigrams(UPPER({text}))))"
    )


def drop_bigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(INDEX_NAME)}")
    schema_editor.execute("DROP FUNCTION IF EXISTS kura_bigrams(text)")


class Migration(migrations.Migration):
    dependencies = [
        ("dmp", "0004_search_trigram_indexes"),
    ]

    operations = [
        migrations.RunPython(create_bigram_index, drop_bigram_index, elidable=False),
    ]
