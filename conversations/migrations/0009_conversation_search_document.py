"""Workspace search over message and note text, one document per conversation.

`conversations_conversation.search_document` holds the distinct words (stripped tsvector, "simple" config)
of the conversation's messages and notes, with a GIN index. It is kept by statement-level triggers on the
timeline (an entry added, edited or moved to another conversation adds its words), not by the model:
the column is not a model field, so a `save()` of a stale instance cannot overwrite it. Words are only
added: an edited body keeps matching its old words too, which over-matches harmlessly.

Searching one row per conversation instead of ten timeline rows is what makes the search fast: a common
word is found by walking the most recent conversations, a rare one through this index (see
`conversations.selectors.conversation_search`). The customer-name and address parts of the search are
`ILIKE '%...%'`; the trigram indexes below serve exactly those expressions.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

FORWARD = """
ALTER TABLE conversations_conversation ADD COLUMN search_document tsvector;

CREATE FUNCTION conversations_search_document_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations_conversation AS c
    SET search_document = strip(COALESCE(c.search_document, ''::tsvector) || added.document)
    FROM (
        SELECT conversation_id, to_tsvector('simple', string_agg(body, ' ')) AS document
        FROM new_entries
        WHERE conversation_id IS NOT NULL AND kind IN ('message', 'note') AND body <> ''
        GROUP BY conversation_id
    ) AS added
    WHERE c.id = added.conversation_id;
    RETURN NULL;
END $$;

CREATE FUNCTION conversations_search_document_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations_conversation AS c
    SET search_document = strip(COALESCE(c.search_document, ''::tsvector) || added.document)
    FROM (
        SELECT n.conversation_id, to_tsvector('simple', string_agg(n.body, ' ')) AS document
        FROM new_entries AS n JOIN old_entries AS o ON o.id = n.id
        WHERE n.conversation_id IS NOT NULL AND n.kind IN ('message', 'note') AND n.body <> ''
          AND (n.body IS DISTINCT FROM o.body OR n.conversation_id IS DISTINCT FROM o.conversation_id)
        GROUP BY n.conversation_id
    ) AS added
    WHERE c.id = added.conversation_id;
    RETURN NULL;
END $$;

CREATE TRIGGER entry_search_document_insert AFTER INSERT ON conversations_timelineentry
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION conversations_search_document_add();
CREATE TRIGGER entry_search_document_update AFTER UPDATE ON conversations_timelineentry
    REFERENCING OLD TABLE AS old_entries NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION conversations_search_document_change();

UPDATE conversations_conversation AS c SET search_document = d.document
FROM (
    SELECT conversation_id, strip(to_tsvector('simple', string_agg(body, ' '))) AS document
    FROM conversations_timelineentry
    WHERE conversation_id IS NOT NULL AND kind IN ('message', 'note') AND body <> ''
    GROUP BY conversation_id
) AS d
WHERE c.id = d.conversation_id;

CREATE INDEX conv_search_document ON conversations_conversation USING gin (search_document);
CREATE INDEX customer_name_trgm ON customers_customer USING gin (upper(name::text) gin_trgm_ops);
CREATE INDEX identity_value_trgm ON customers_identity USING gin (upper(value::text) gin_trgm_ops);
"""

BACKWARD = """
DROP INDEX IF EXISTS identity_value_trgm;
DROP INDEX IF EXISTS customer_name_trgm;
DROP TRIGGER IF EXISTS entry_search_document_update ON conversations_timelineentry;
DROP TRIGGER IF EXISTS entry_search_document_insert ON conversations_timelineentry;
DROP FUNCTION IF EXISTS conversations_search_document_change();
DROP FUNCTION IF EXISTS conversations_search_document_add();
ALTER TABLE conversations_conversation DROP COLUMN IF EXISTS search_document;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0008_workspace_list"),
        ("customers", "0001_initial"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunPython(forward, backward),
    ]
