-- SQL functions the rules compiler calls on PostgreSQL (src/rules/postgres.rs).
-- They give SQLite's answers where PostgreSQL's typed operators would not:
-- a dynamic value (anything without a fixed column type) travels as jsonb,
-- a number or a string, never JSON null (SQL NULL instead) or a boolean (1/0,
-- as SQLite's json_extract gives them). Idempotent: run on every start.

-- A JSON value as SQLite's json_extract / json_each give it.
CREATE OR REPLACE FUNCTION fb_sqlite(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(v)
    WHEN 'null' THEN NULL
    WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1'::jsonb ELSE '0'::jsonb END
    ELSE v
  END
$$;

-- Element i of a JSON array; NULL for anything else (PostgreSQL's `-> i`
-- gives a scalar back for index 0, SQLite's `$[0]` does not).
CREATE OR REPLACE FUNCTION fb_at(v jsonb, i int) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'array' THEN v -> i END
$$;

-- Minified JSON text, as the server writes JSON: keys in byte order (a
-- serde_json map), no spaces.
CREATE OR REPLACE FUNCTION fb_json_text(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(v)
    WHEN 'array' THEN '[' || COALESCE((SELECT string_agg(fb_json_text(e), ',' ORDER BY i)
      FROM jsonb_array_elements(v) WITH ORDINALITY AS x(e, i)), '') || ']'
    WHEN 'object' THEN '{' || COALESCE((SELECT string_agg(to_jsonb(k)::text || ':' || fb_json_text(e), ',' ORDER BY k COLLATE "C")
      FROM jsonb_each(v) AS x(k, e)), '') || '}'
    ELSE v::text
  END
$$;

-- A whole JSON column as SQLite holds it (a column declared JSON has
-- NUMERIC affinity): a JSON number is that number, anything else its text.
CREATE OR REPLACE FUNCTION fb_document(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN v ELSE to_jsonb(fb_json_text(v)) END
$$;

-- The text SQLite gives a value: a string's content, a number's digits,
-- an array's or object's JSON.
CREATE OR REPLACE FUNCTION fb_text(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(v)
    WHEN 'string' THEN v #>> '{}'
    WHEN 'number' THEN CASE
      WHEN (v #>> '{}') ~ '[.]' AND (v #>> '{}') !~ '[eE]'
        THEN regexp_replace(v #>> '{}', '([.][0-9]*?)0+$', '\1') || CASE WHEN (v #>> '{}') ~ '[.]0*$' THEN '0' ELSE '' END
      ELSE v #>> '{}'
    END
    ELSE fb_json_text(v)
  END COLLATE "C"
$$;

-- A number column's value as SQLite writes it: whole numbers are stored as
-- integers there (NUMERIC affinity), others as reals in their shortest
-- round-trip digits with `.0` before an exponent (SQLite writes 17 digits
-- where fewer do not round-trip, e.g. 0.33333333333333332: see README).
CREATE OR REPLACE FUNCTION fb_number_text(x double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN x = trunc(x) AND abs(x) < 9.2e18 THEN trunc(x)::bigint::text
    ELSE regexp_replace(x::text, '^(-?[0-9]+)e', '\1.0e')
  END
$$;

-- SQLite's NUMERIC affinity on a value: text that reads as a number
-- (surrounding spaces allowed) becomes that number.
CREATE OR REPLACE FUNCTION fb_numeric(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN jsonb_typeof(v) = 'string'
     AND (v #>> '{}') ~ '^[ \t\n\r\f\v]*[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\f\v]*$'
      THEN to_jsonb(btrim(v #>> '{}', E' \t\n\r\f\v')::numeric)
    ELSE v
  END
$$;

-- SQLite's comparison of two values: NULL when either is NULL, numbers
-- before text, numbers by value, text by bytes.
CREATE OR REPLACE FUNCTION fb_cmp(a jsonb, b jsonb) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN a IS NULL OR b IS NULL THEN NULL
    WHEN jsonb_typeof(a) = 'number' AND jsonb_typeof(b) = 'number'
      THEN sign((a #>> '{}')::numeric - (b #>> '{}')::numeric)::int
    WHEN jsonb_typeof(a) = 'number' THEN -1
    WHEN jsonb_typeof(b) = 'number' THEN 1
    WHEN fb_text(a) < fb_text(b) THEN -1
    WHEN fb_text(a) > fb_text(b) THEN 1
    ELSE 0
  END
$$;

-- Sort keys in SQLite's order of storage classes: numbers (1) before text (2).
CREATE OR REPLACE FUNCTION fb_class(v jsonb) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v IS NULL THEN NULL WHEN jsonb_typeof(v) = 'number' THEN 1 ELSE 2 END
$$;

CREATE OR REPLACE FUNCTION fb_number(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::numeric END
$$;

-- SQLite's `a IS NOT b`: NULL is a value here.
CREATE OR REPLACE FUNCTION fb_distinct(a jsonb, b jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN a IS NULL THEN b IS NOT NULL
    WHEN b IS NULL THEN TRUE
    ELSE fb_cmp(a, b) <> 0
  END
$$;

-- Text as JSON when it is valid JSON, else NULL (SQLite's json_valid guard).
CREATE OR REPLACE FUNCTION fb_json(t text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN t::jsonb;
EXCEPTION WHEN others THEN
  RETURN NULL;
END
$$;

-- A JSON array itself, an empty one for anything else.
CREATE OR REPLACE FUNCTION fb_array(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'array' THEN v ELSE '[]'::jsonb END
$$;

-- The length of a JSON array, 0 for anything else.
CREATE OR REPLACE FUNCTION fb_length(v jsonb) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'array' THEN jsonb_array_length(v) ELSE 0 END
$$;

-- The elements to expand: the array itself, or one null for an empty list
-- or a non-array (what a LEFT JOIN gives PocketBase).
CREATE OR REPLACE FUNCTION fb_list(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN fb_length(v) > 0 THEN v ELSE '[null]'::jsonb END
$$;

-- A value as a number for geoDistance (text is trimmed and parsed), or NULL.
CREATE OR REPLACE FUNCTION fb_float(v jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(fb_numeric(v))
    WHEN 'number' THEN (fb_numeric(v) #>> '{}')::double precision
  END
$$;

-- Haversine distance in km between (lonA, latA) and (lonB, latB), as the
-- SQLite function of the same name (src/db/pool.rs).
CREATE OR REPLACE FUNCTION fb_geo_distance(lon_a jsonb, lat_a jsonb, lon_b jsonb, lat_b jsonb)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 2 * 6371.0 * asin(CASE WHEN h > 1 THEN 1 ELSE h END)
  FROM (SELECT sqrt(
    power(sin(radians(fb_float(lat_b) - fb_float(lat_a)) / 2), 2)
    + cos(radians(fb_float(lat_a))) * cos(radians(fb_float(lat_b)))
      * power(sin(radians(fb_float(lon_b) - fb_float(lon_a)) / 2), 2)) AS h) AS haversine
$$;
