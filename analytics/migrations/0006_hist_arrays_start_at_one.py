"""Histogram arrays always start at subscript 1: assigning element k of an empty Postgres array makes k its
lower bound instead of padding with NULLs, which dropped the low buckets' positions."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION analytics_hist_step(state integer[], bucket integer) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF bucket IS NULL THEN
        RETURN state;
    END IF;
    IF state IS NULL THEN
        state := ARRAY[NULL]::integer[];
    END IF;
    state[bucket + 1] := COALESCE(state[bucket + 1], 0) + 1;
    RETURN state;
END $$;

CREATE OR REPLACE FUNCTION analytics_hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    result integer[];
    i integer;
BEGIN
    IF a IS NULL THEN
        RETURN b;
    END IF;
    IF b IS NULL THEN
        RETURN a;
    END IF;
    result := a;
    FOR i IN 1 .. COALESCE(array_upper(b, 1), 0) LOOP
        IF b[i] IS NOT NULL THEN
            result[i] := COALESCE(result[i], 0) + b[i];
        END IF;
    END LOOP;
    RETURN result;
END $$;

"""


class Migration(migrations.Migration):
    dependencies = [("analytics", "0005_rollup_sql_functions")]

    operations = [migrations.RunSQL(FORWARD, migrations.RunSQL.noop)]
