"""SQL helpers of the rollups (see analytics/rollups.py), so incremental upserts, rebuilds and checks bucket
and add histograms with the very same code.

- `analytics_bucket(seconds)`: the log-spaced bucket of a duration: 0 below one second, else
  floor(ln(s) / ln(1.1)) + 1, i.e. bucket k >= 1 holds [1.1^(k-1), 1.1^k).
- `analytics_hist(bucket)`: aggregate counting buckets into an integer[] (index = bucket + 1, NULL = 0).
- `analytics_hist_add(a, b)`: element-wise sum of two such arrays (ON CONFLICT merges);
  `analytics_hist_sum(hist)`: the aggregate of it (reports add many rows' histograms).
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION analytics_bucket(seconds double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN seconds IS NULL THEN NULL WHEN seconds < 1 THEN 0
                ELSE floor(ln(seconds) / ln(1.1))::integer + 1 END
$$;

CREATE FUNCTION analytics_hist_step(state integer[], bucket integer) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF bucket IS NULL THEN
        RETURN state;
    END IF;
    IF state IS NULL THEN
        state := '{}'::integer[];
    END IF;
    state[bucket + 1] := COALESCE(state[bucket + 1], 0) + 1;
    RETURN state;
END $$;

CREATE AGGREGATE analytics_hist(integer) (SFUNC = analytics_hist_step, STYPE = integer[]);

CREATE FUNCTION analytics_hist_add(a integer[], b integer[]) RETURNS integer[]
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

CREATE AGGREGATE analytics_hist_sum(integer[]) (SFUNC = analytics_hist_add, STYPE = integer[]);
"""

BACKWARD = """
DROP AGGREGATE IF EXISTS analytics_hist_sum(integer[]);
DROP FUNCTION IF EXISTS analytics_hist_add(integer[], integer[]);
DROP AGGREGATE IF EXISTS analytics_hist(integer);
DROP FUNCTION IF EXISTS analytics_hist_step(integer[], integer);
DROP FUNCTION IF EXISTS analytics_bucket(double precision);
"""


class Migration(migrations.Migration):
    dependencies = [("analytics", "0004_rollups_presence_business_seconds")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
