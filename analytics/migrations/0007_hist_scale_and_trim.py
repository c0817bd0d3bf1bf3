"""Histograms can be subtracted (an event revised: its old facts retracted, its new ones added): scaling by -1,
and sums that drop zero counts and trailing empty buckets, so a retracted-then-readded histogram is the
same array a recomputation gives."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION analytics_hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    result integer[];
    i integer;
    top integer;
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
            result[i] := NULLIF(COALESCE(result[i], 0) + b[i], 0);
        END IF;
    END LOOP;
    top := COALESCE(array_upper(result, 1), 0);
    WHILE top > 0 AND result[top] IS NULL LOOP
        top := top - 1;
    END LOOP;
    IF top = 0 THEN
        RETURN NULL;
    END IF;
    RETURN result[1:top];
END $$;

CREATE FUNCTION analytics_hist_scale(a integer[], factor integer) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN a IS NULL THEN NULL
                ELSE ARRAY(SELECT x * factor FROM unnest(a) WITH ORDINALITY AS u(x, i) ORDER BY i) END
$$;
"""

BACKWARD = "DROP FUNCTION IF EXISTS analytics_hist_scale(integer[], integer);"


class Migration(migrations.Migration):
    dependencies = [("analytics", "0006_hist_arrays_start_at_one")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
