-- SQLite's aggregates that PocketBase's view queries use and PostgreSQL
-- lacks, so that a view query SQLite accepts (it checks and infers every
-- view, see schema/view.rs) also runs there. Idempotent.

-- total(x): the sum as a float, 0.0 over no rows or only NULLs (where sum()
-- gives NULL). Integers and numerics reach it through PostgreSQL's implicit
-- casts to double precision.
CREATE OR REPLACE AGGREGATE total(double precision) (
  SFUNC = float8pl,
  STYPE = double precision,
  COMBINEFUNC = float8pl,
  INITCOND = '0',
  PARALLEL = SAFE
);
