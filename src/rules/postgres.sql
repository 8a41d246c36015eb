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

-- An exact integer power (numeric multiplication is exact; PostgreSQL's
-- power() may round large integer powers).
CREATE OR REPLACE FUNCTION fb_ipow(b numeric, n int) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE r numeric := 1;
BEGIN
  WHILE n > 0 LOOP
    IF n % 2 = 1 THEN r := r * b; END IF;
    b := b * b;
    n := n / 2;
  END LOOP;
  RETURN r;
END
$$;

-- The top 96 bits of 10^q, rounded to nearest (SQLite's aScale/aScaleLo
-- tables, tool/mkfptab.c --round).
CREATE OR REPLACE FUNCTION fb_pow10_96(q int) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE a numeric; b numeric; t int; k int; two numeric := 2;
BEGIN
  IF q >= 0 THEN a := fb_ipow(10, q); b := 1; ELSE a := 1; b := fb_ipow(10, -q); END IF;
  t := floor(q * 3.3219280948873623478703194294894)::int;
  -- t = floor(log2(a/b)), corrected where the estimate is one off
  LOOP
    IF t >= 0 THEN
      IF a < b * fb_ipow(two, t) THEN t := t - 1; CONTINUE; END IF;
      IF a >= b * fb_ipow(two, t + 1) THEN t := t + 1; CONTINUE; END IF;
    ELSE
      IF a * fb_ipow(two, -t) < b THEN t := t - 1; CONTINUE; END IF;
      IF a * fb_ipow(two, -t) >= 2 * b THEN t := t + 1; CONTINUE; END IF;
    END IF;
    EXIT;
  END LOOP;
  k := 95 - t;
  IF k >= 0 THEN a := a * fb_ipow(two, k); ELSE b := b * fb_ipow(two, -k); END IF;
  RETURN div(2 * a + b, 2 * b);
END
$$;

-- SQLite's powerOfTen(p): the most significant 64 bits of 10^p, as its
-- tables and one refining multiplication give them (not always exact).
CREATE OR REPLACE FUNCTION fb_pow10_64(p int) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE g int; n int; s96 numeric; s numeric; slo numeric; b numeric; r numeric; x numeric; lo numeric;
  two32 numeric := 4294967296; two64 numeric := 18446744073709551616; two63 numeric := 9223372036854775808;
BEGIN
  IF p = -1 THEN RETURN 14757395258967641292; END IF;
  IF p BETWEEN 0 AND 26 THEN
    x := fb_ipow(10, p);
    WHILE x < two63 LOOP x := x * 2; END LOOP;
    WHILE x >= two64 LOOP x := div(x, 2); END LOOP;
    RETURN x;
  END IF;
  g := p / 27; n := p % 27;
  IF p < 0 AND n <> 0 THEN g := g - 1; n := n + 27; END IF;
  s96 := fb_pow10_96(27 * g);
  s := div(s96, two32); slo := mod(s96, two32);
  IF n = 0 THEN RETURN s; END IF;
  b := fb_pow10_64(n);
  r := s * b + div(slo * b, two32);
  x := div(r, two64);
  lo := mod(div(r, two32), two32);
  IF x < two63 THEN
    x := 2 * x + CASE WHEN lo >= 2147483648 THEN 1 ELSE 0 END;
  END IF;
  RETURN x;
END
$$;

-- A real as SQLite (3.54, `%!.17g` in vdbeMemRenderNum) writes it as text.
-- The binary value is scaled to 18 or 19 digits as sqlite3Fp2Convert10
-- does (with SQLite's 64-bit powers of ten, so not always exactly), then
-- rounded to 17, except that digits ending
-- in 99 or 000 at the 15th/16th place are cut short when the shorter
-- number reads back as the same real; fixed notation from 1e-4 below
-- 1e17, else d.ddde+XX, with `.0` where no fraction is left.
CREATE OR REPLACE FUNCTION fb_real_text(x double precision) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  bits bigint; be int; m numeric; e int; nn int; p int;
  h numeric; z text; n int; pexp int; idp int;
  jj int; v2 numeric; iround int; j int; sign text := ''; out text; ex int;
BEGIN
  IF x IS NULL THEN RETURN NULL; END IF;
  IF x = 'NaN'::float8 THEN RETURN NULL; END IF;
  IF x = 'Infinity'::float8 THEN RETURN 'Inf'; END IF;
  IF x = '-Infinity'::float8 THEN RETURN '-Inf'; END IF;
  IF x = 0 THEN RETURN '0.0'; END IF;
  IF x < 0 THEN sign := '-'; x := -x; END IF;
  bits := ('x' || encode(float8send(x), 'hex'))::bit(64)::bigint;
  be := ((bits >> 52) & 2047)::int;
  IF be = 0 THEN
    -- subnormal: the mantissa shifted until its top (64th) bit is set
    m := bits & 4503599627370495;
    nn := 64 - length(ltrim((bits & 4503599627370495)::bit(64)::text, '0'));
    e := -1074 - nn;
    m := m * fb_ipow(2, nn);
  ELSE
    m := ((bits & 4503599627370495) + 4503599627370496)::numeric * 2048;
    e := be - 1086;
  END IF;
  -- p as sqlite3Fp2Convert10 picks it: 17 - floor((e+63)*log10(2)), approximated
  p := 17 - floor(((e + 63) * 78913)::numeric / 262144)::int;
  -- the 18 digits as sqlite3Fp2Convert10 computes them: the high 64 bits
  -- of m times powerOfTen(p), shifted, then rounded half up on one more bit
  h := div(m * fb_pow10_64(p), 18446744073709551616);
  h := div(h, fb_ipow(2, -(e + floor((p * 108853)::numeric / 32768)::int + 2)));
  z := div(h + 2 * mod(h, 2), 2)::text;
  n := length(z);
  pexp := -p;
  idp := n + pexp;
  IF n > 17 THEN
    iround := 17;
    IF substr(z, 16, 1) = '9' AND substr(z, 15, 1) = '9' THEN
      jj := 14;
      WHILE jj > 0 AND substr(z, jj, 1) = '9' LOOP jj := jj - 1; END LOOP;
      v2 := CASE WHEN jj = 0 THEN 1 ELSE substr(z, 1, jj)::numeric + 1 END;
      IF x = (v2::text || 'e' || (pexp + n - jj)::text)::float8 THEN iround := jj + 1; END IF;
    ELSIF idp >= n OR substr(z, 14, 3) = '000' THEN
      jj := 13;
      WHILE substr(z, jj, 1) = '0' LOOP jj := jj - 1; END LOOP;
      v2 := substr(z, 1, jj)::numeric;
      IF x = (v2::text || 'e' || (pexp + n - jj)::text)::float8 THEN iround := jj + 1; END IF;
    END IF;
    -- round half up at iround digits
    IF substr(z, iround + 1, 1) >= '5' THEN
      v2 := substr(z, 1, iround)::numeric + 1;
      IF length(v2::text) > iround THEN idp := idp + 1; END IF;
      z := v2::text;
    ELSE
      z := substr(z, 1, iround);
    END IF;
  END IF;
  z := rtrim(z, '0');
  ex := idp - 1;
  IF ex < -4 OR ex > 16 THEN
    out := substr(z, 1, 1) || '.' || CASE WHEN length(z) > 1 THEN substr(z, 2) ELSE '0' END
      || 'e' || CASE WHEN ex < 0 THEN '-' ELSE '+' END || CASE WHEN abs(ex) < 10 THEN '0' ELSE '' END || abs(ex)::text;
  ELSIF idp <= 0 THEN
    out := '0.' || repeat('0', -idp) || z;
  ELSIF length(z) <= idp THEN
    out := z || repeat('0', idp - length(z)) || '.0';
  ELSE
    out := substr(z, 1, idp) || '.' || substr(z, idp + 1);
  END IF;
  RETURN sign || out;
END
$$;

-- The text SQLite gives a value: a string's content, a number's digits
-- (an integer's as they are, a real's as fb_real_text writes them), an
-- array's or object's JSON.
CREATE OR REPLACE FUNCTION fb_text(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(v)
    WHEN 'string' THEN v #>> '{}'
    WHEN 'number' THEN CASE
      WHEN (v #>> '{}') ~ '^-?[0-9]+$' AND (v #>> '{}')::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
        THEN v #>> '{}'
      ELSE fb_real_text((v #>> '{}')::double precision)
    END
    ELSE fb_json_text(v)
  END COLLATE "C"
$$;

-- A number column's value as SQLite writes it: whole numbers are stored as
-- integers there (NUMERIC affinity), others as reals (fb_real_text).
CREATE OR REPLACE FUNCTION fb_number_text(x double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN x = trunc(x) AND abs(x) < 9.2e18 THEN trunc(x)::bigint::text
    ELSE fb_real_text(x)
  END
$$;

-- Numeric text as SQLite reads it: an integer when it is one and fits in
-- 64 bits, else a real (double precision, as 0.33333333333333332 and
-- 0.3333333333333333 are the same real there). Past a real's range it stays
-- the exact number, which orders the same.
CREATE OR REPLACE FUNCTION fb_numeric_text(t text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN t ~ '^[+-]?[0-9]+$' AND t::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
      THEN to_jsonb(t::numeric)
    WHEN t::numeric = 0 OR abs(t::numeric) BETWEEN 1e-307 AND 1e308
      THEN to_jsonb(t::numeric::double precision)
    ELSE to_jsonb(t::numeric)
  END
$$;

-- SQLite's NUMERIC affinity on a value: text that reads as a number
-- (surrounding spaces allowed) becomes that number.
CREATE OR REPLACE FUNCTION fb_numeric(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN jsonb_typeof(v) = 'string'
     AND (v #>> '{}') ~ '^[ \t\n\r\f\v]*[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\f\v]*$'
      THEN fb_numeric_text(btrim(v #>> '{}', E' \t\n\r\f\v'))
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

-- SQLite's reading of a date/time value as milliseconds of its Julian day
-- number (iJD), or NULL where SQLite's date functions give NULL: a number is
-- a Julian day (Unix seconds with `unixepoch`), text is YYYY-MM-DD
-- [HH:MM[:SS[.fff]]][zone], HH:MM[:SS[.fff]][zone] (on 2000-01-01), `now`,
-- or a number; `unixepoch` accepts numbers only.
CREATE OR REPLACE FUNCTION fb_julian_ms(v jsonb, unixepoch boolean) RETURNS bigint
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  t text;
  m text[];
  y int; mo int; d int; h int := 0; mi int := 0; s int := 0;
  ms numeric := 0;
  tz int := 0;
  raw double precision;
  jd_ms bigint;
  days bigint;
BEGIN
  IF v IS NULL THEN RETURN NULL; END IF;
  IF jsonb_typeof(v) = 'number' THEN
    raw := (v #>> '{}')::double precision;
  ELSIF jsonb_typeof(v) = 'string' THEN
    t := v #>> '{}';
    m := regexp_match(t, '^(-?)([0-9]{4})-([0-9]{2})-([0-9]{2})[ \t\n\r\f\vT]*(.*)$');
    IF m IS NOT NULL THEN
      y := m[2]::int; mo := m[3]::int; d := m[4]::int;
      IF m[1] = '-' THEN y := -y; END IF;
      IF mo < 1 OR mo > 12 OR d < 1 OR d > 31 THEN RETURN NULL; END IF;
      t := m[5];
      IF t <> '' THEN
        m := regexp_match(t, '^([0-9]{2}):([0-9]{2})(:([0-9]{2})([.]([0-9]+))?)?[ \t\n\r\f\v]*(([-+])([0-9]{2}):([0-9]{2})|[zZ])?[ \t\n\r\f\v]*$');
        IF m IS NULL THEN RETURN NULL; END IF;
      END IF;
    ELSE
      m := regexp_match(t, '^([0-9]{2}):([0-9]{2})(:([0-9]{2})([.]([0-9]+))?)?[ \t\n\r\f\v]*(([-+])([0-9]{2}):([0-9]{2})|[zZ])?[ \t\n\r\f\v]*$');
      IF m IS NOT NULL THEN
        y := 2000; mo := 1; d := 1;
      ELSIF lower(t) = 'now' THEN
        IF unixepoch THEN RETURN NULL; END IF;
        RETURN (extract(epoch FROM statement_timestamp()) * 1000)::bigint + 210866760000000;
      ELSIF t ~ '^[ \t\n\r\f\v]*[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\f\v]*$' THEN
        raw := btrim(t, E' \t\n\r\f\v')::double precision;
      ELSE
        RETURN NULL;
      END IF;
    END IF;
    IF raw IS NULL THEN
      IF unixepoch THEN RETURN NULL; END IF;
      IF t <> '' THEN
        h := m[1]::int; mi := m[2]::int;
        s := COALESCE(m[4]::int, 0);
        IF m[6] IS NOT NULL THEN
          ms := least(('0.' || m[6])::numeric, 0.999);
        END IF;
        IF h > 24 OR mi > 59 OR s > 59 THEN RETURN NULL; END IF;
        IF h = 24 AND (mi <> 0 OR s <> 0 OR ms <> 0) THEN RETURN NULL; END IF;
        IF m[8] IS NOT NULL THEN
          IF m[9]::int > 14 OR m[10]::int > 59 THEN RETURN NULL; END IF;
          tz := (m[9]::int * 60 + m[10]::int) * CASE WHEN m[8] = '-' THEN -1 ELSE 1 END;
        END IF;
      END IF;
      -- SQLite's computeJD: days from the proleptic Gregorian calendar.
      IF mo <= 2 THEN y := y - 1; mo := mo + 12; END IF;
      days := floor(365.25 * (y + 4716))::bigint + floor(30.6001 * (mo + 1))::bigint + d
              + (2 - floor(y / 100.0)::bigint + floor(floor(y / 100.0) / 4)::bigint);
      jd_ms := ((days * 86400000 - 1524.5 * 86400000)::bigint)
               + h * 3600000 + mi * 60000 + floor((s + ms) * 1000 + 0.5)::bigint
               - tz * 60000;
      IF jd_ms < 0 OR jd_ms > 464269060799999 THEN RETURN NULL; END IF;
      RETURN jd_ms;
    END IF;
  ELSE
    RETURN NULL;
  END IF;
  -- A number: a Julian day, or Unix seconds with `unixepoch`.
  IF unixepoch THEN
    jd_ms := round(raw * 1000)::bigint + 210866760000000;
  ELSE
    jd_ms := round(raw * 86400000)::bigint;
  END IF;
  IF jd_ms < 0 OR jd_ms > 464269060799999 THEN RETURN NULL; END IF;
  RETURN jd_ms;
EXCEPTION WHEN numeric_value_out_of_range OR invalid_text_representation THEN
  RETURN NULL;
END
$$;

-- C's `%0<width>d`: zero-padded to width, the sign counting, never cut.
CREATE OR REPLACE FUNCTION fb_pad(n bigint, width int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN n < 0 THEN '-' || fb_pad(-n, width - 1)
              WHEN length(n::text) >= width THEN n::text
              ELSE lpad(n::text, width, '0') END
$$;

-- SQLite's strftime(format, value[, 'unixepoch']) (NULL where it is NULL).
CREATE OR REPLACE FUNCTION fb_strftime(fmt text, v jsonb, unixepoch boolean) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  jd bigint := fb_julian_ms(v, unixepoch);
  ts timestamp;
  y int; mo int; d int; h int; mi int; sec numeric;
  doy int; dow int; h12 int;
  thursday timestamp; iso_y int; iso_doy int;
  out text := '';
  i int := 1;
  c text;
  n int;
BEGIN
  IF fmt IS NULL OR jd IS NULL THEN RETURN NULL; END IF;
  -- Unix epoch is Julian day 2440587.5 = 210866760000000 ms.
  ts := timestamp '1970-01-01' + (jd - 210866760000000) * interval '1 millisecond';
  y := extract(year FROM ts)::int;
  IF y <= 0 THEN y := y + 1; END IF; -- PostgreSQL has no year 0: 1 BC is SQLite's 0000
  mo := extract(month FROM ts); d := extract(day FROM ts);
  h := extract(hour FROM ts); mi := extract(minute FROM ts);
  sec := trunc(extract(second FROM ts)::numeric, 3);
  doy := extract(doy FROM ts)::int - 1;
  dow := extract(dow FROM ts)::int;
  h12 := CASE WHEN h > 12 THEN h - 12 WHEN h = 0 THEN 12 ELSE h END;
  -- ISO weeks as SQLite counts them: from the Thursday of the same week.
  thursday := ts + (3 - (dow + 6) % 7) * interval '1 day';
  iso_y := extract(year FROM thursday)::int;
  IF iso_y <= 0 THEN iso_y := iso_y + 1; END IF;
  iso_doy := extract(doy FROM thursday)::int - 1;
  n := length(fmt);
  WHILE i <= n LOOP
    c := substr(fmt, i, 1);
    IF c <> '%' THEN
      out := out || c;
      i := i + 1;
      CONTINUE;
    END IF;
    c := substr(fmt, i + 1, 1);
    i := i + 2;
    out := out || CASE c
      WHEN 'd' THEN fb_pad(d, 2)
      WHEN 'e' THEN lpad(d::text, 2, ' ')
      WHEN 'f' THEN lpad(to_char(sec, 'FM990.000'), 6, '0')
      WHEN 'F' THEN fb_pad(y, 4) || '-' || fb_pad(mo, 2) || '-' || fb_pad(d, 2)
      WHEN 'G' THEN fb_pad(iso_y, 4)
      WHEN 'g' THEN fb_pad(iso_y % 100, 2)
      WHEN 'H' THEN fb_pad(h, 2)
      WHEN 'k' THEN lpad(h::text, 2, ' ')
      WHEN 'I' THEN fb_pad(h12, 2)
      WHEN 'l' THEN lpad(h12::text, 2, ' ')
      WHEN 'j' THEN fb_pad((doy + 1), 3)
      WHEN 'J' THEN fb_julian_text(jd)
      WHEN 'm' THEN fb_pad(mo, 2)
      WHEN 'M' THEN fb_pad(mi, 2)
      WHEN 'p' THEN CASE WHEN h >= 12 THEN 'PM' ELSE 'AM' END
      WHEN 'P' THEN CASE WHEN h >= 12 THEN 'pm' ELSE 'am' END
      WHEN 'R' THEN fb_pad(h, 2) || ':' || fb_pad(mi, 2)
      WHEN 's' THEN (trunc(jd / 1000.0)::bigint - 210866760000)::text
      WHEN 'S' THEN fb_pad(trunc(sec)::int, 2)
      WHEN 'T' THEN fb_pad(h, 2) || ':' || fb_pad(mi, 2) || ':' || fb_pad(trunc(sec)::int, 2)
      WHEN 'u' THEN CASE WHEN dow = 0 THEN '7' ELSE dow::text END
      WHEN 'w' THEN dow::text
      WHEN 'U' THEN lpad(((doy - dow + 7) / 7)::text, 2, '0')
      WHEN 'V' THEN fb_pad(iso_doy / 7 + 1, 2)
      WHEN 'W' THEN lpad(((doy - ((dow + 6) % 7) + 7) / 7)::text, 2, '0')
      WHEN 'Y' THEN fb_pad(y, 4)
      WHEN '%' THEN '%'
    END;
    -- An unknown (or missing) specifier makes SQLite's strftime NULL.
    IF out IS NULL THEN RETURN NULL; END IF;
  END LOOP;
  RETURN out;
END
$$;

-- A Julian day (from milliseconds) as SQLite's `%J` writes it: the double
-- jd_ms / 86400000 printed with `%.16g`, rounded from the double's exact
-- binary value (m * 2^-n = m * 5^n / 10^n), as C's printf rounds.
CREATE OR REPLACE FUNCTION fb_julian_text(jd_ms bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  x double precision := jd_ms / 86400000.0::float8;
  bits bigint;
  e int;
  n int;
  m numeric;
  digits text;
  v numeric;
  p int;
  out text;
BEGIN
  IF x IS NULL THEN RETURN NULL; END IF;
  IF x = 0 THEN RETURN '0'; END IF;
  bits := ('x' || encode(float8send(abs(x)), 'hex'))::bit(64)::bigint;
  e := ((bits >> 52) & 2047)::int;
  m := (bits & 4503599627370495)::numeric;
  IF e > 0 THEN m := m + 4503599627370496; ELSE e := 1; END IF;
  n := 1075 - e;
  IF n <= 0 THEN
    v := m * power(2::numeric, -n);
  ELSE
    digits := trunc(m * power(5::numeric, n), 0)::text;
    IF length(digits) <= n THEN
      digits := repeat('0', n + 1 - length(digits)) || digits;
    END IF;
    v := (substr(digits, 1, length(digits) - n) || '.' || right(digits, n))::numeric;
  END IF;
  p := floor(log(v))::int;
  IF p < -4 OR p >= 16 THEN
    out := round(v / power(10::numeric, p), 15)::text;
    out := regexp_replace(regexp_replace(out, '0+$', ''), '[.]$', '');
    out := out || 'e' || CASE WHEN p < 0 THEN '-' ELSE '+' END || lpad(abs(p)::text, 2, '0');
  ELSE
    out := round(v, 15 - p)::text;
    IF out ~ '[.]' THEN
      out := regexp_replace(regexp_replace(out, '0+$', ''), '[.]$', '');
    END IF;
  END IF;
  RETURN CASE WHEN x < 0 THEN '-' || out ELSE out END;
END
$$;

-- SQLite's sum() and avg() over numbers (the aggregate endpoint): integers
-- (integral numbers, which SQLite's NUMERIC columns keep as integers) are
-- summed exactly until the first non-integer or a 64-bit overflow, then
-- everything in doubles with Kahan-Babuska-Neumaier compensation, in the
-- order the rows come, as SQLite's func.c does. A sum past the largest
-- double is infinite, never an error.
DO $$ BEGIN
  CREATE TYPE fb_sum_state AS (n bigint, exact boolean, isum bigint, rsum float8, rerr float8);
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- a + b, infinite (not an error) past the largest double.
CREATE OR REPLACE FUNCTION fb_add(a float8, b float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN abs(a / 2 + b / 2) <= 8.988465674311579e307 THEN a + b
    ELSE sign(a / 2 + b / 2) * 'Infinity'::float8
  END
$$;

-- One compensated step.
CREATE OR REPLACE FUNCTION fb_kbn(s fb_sum_state, r float8) RETURNS fb_sum_state
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE t float8;
BEGIN
  t := fb_add(s.rsum, r);
  IF abs(s.rsum) > abs(r) THEN
    s.rerr := fb_add(s.rerr, fb_add(fb_add(s.rsum, -t), r));
  ELSE
    s.rerr := fb_add(s.rerr, fb_add(fb_add(r, -t), s.rsum));
  END IF;
  s.rsum := t;
  RETURN s;
END
$$;

-- One row: exact while every number so far is an integer (a bigint add
-- when far from overflow, numeric at the edge); then compensated steps,
-- inline while every magnitude is far from overflow, else through fb_kbn.
CREATE OR REPLACE FUNCTION fb_sum_step(s fb_sum_state, x float8) RETURNS fb_sum_state
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  total numeric; small bigint; r float8; t float8;
  integral boolean := x = trunc(x) AND x >= -9223372036854775808 AND x < 9223372036854775808;
BEGIN
  IF x IS NULL THEN RETURN s; END IF;
  s.n := s.n + 1;
  IF s.exact AND integral THEN
    IF abs(s.isum) < 4611686018427387904 AND abs(x) < 4611686018427387904 THEN
      s.isum := s.isum + x::bigint;
      RETURN s;
    END IF;
    total := s.isum::numeric + x::bigint::numeric;
    IF total >= -9223372036854775808 AND total <= 9223372036854775807 THEN
      s.isum := total::bigint;
      RETURN s;
    END IF;
  END IF;
  IF s.exact THEN
    s.exact := false;
    IF s.isum <= -4503599627370496 OR s.isum >= 4503599627370496 THEN
      small := s.isum % 16384;
      s.rsum := (s.isum - small)::float8;
      s.rerr := small::float8;
    ELSE
      s.rsum := s.isum::float8;
      s.rerr := 0;
    END IF;
  END IF;
  r := x;
  IF integral AND (x <= -4503599627370496 OR x >= 4503599627370496) THEN
    small := x::bigint % 16384;
    s := fb_kbn(s, (x::bigint - small)::float8);
    r := small::float8;
  END IF;
  IF abs(s.rsum) < 1e300 AND abs(r) < 1e300 AND abs(s.rerr) < 1e300 THEN
    t := s.rsum + r;
    IF abs(s.rsum) > abs(r) THEN
      s.rerr := s.rerr + ((s.rsum - t) + r);
    ELSE
      s.rerr := s.rerr + ((r - t) + s.rsum);
    END IF;
    s.rsum := t;
    RETURN s;
  END IF;
  RETURN fb_kbn(s, r);
END
$$;

-- The compensated total (the compensation dropped once it overflowed).
CREATE OR REPLACE FUNCTION fb_sum_total(s fb_sum_state) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN s.exact THEN s.isum::float8
    WHEN s.rerr IN ('Infinity', '-Infinity', 'NaN') THEN s.rsum
    ELSE fb_add(s.rsum, s.rerr)
  END
$$;

-- The sum as numeric: the exact integer while exact, else exactly the
-- double (through its shortest round-trip text).
CREATE OR REPLACE FUNCTION fb_sum_final(s fb_sum_state) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET extra_float_digits = 1 AS $$
  SELECT CASE
    WHEN s.n = 0 THEN NULL
    WHEN s.exact THEN s.isum::numeric
    ELSE fb_sum_total(s)::text::numeric
  END
$$;

CREATE OR REPLACE FUNCTION fb_avg_final(s fb_sum_state) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN s.n = 0 THEN NULL ELSE fb_sum_total(s) / s.n END
$$;

CREATE OR REPLACE AGGREGATE fb_sum(float8) (
  SFUNC = fb_sum_step, STYPE = fb_sum_state, FINALFUNC = fb_sum_final,
  INITCOND = '(0,t,0,0,0)'
);

CREATE OR REPLACE AGGREGATE fb_avg(float8) (
  SFUNC = fb_sum_step, STYPE = fb_sum_state, FINALFUNC = fb_avg_final,
  INITCOND = '(0,t,0,0,0)'
);
