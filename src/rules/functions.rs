//! The functions a filter may call: `geoDistance` and `strftime`. Each takes
//! already-compiled argument SQL and returns the call as SQL, using only
//! SQLite built-ins (the bundled SQLite has its math functions enabled:
//! `sin`, `cos`, `asin`, `sqrt`, `pow`, `radians`, `min`).

use super::error::RuleError;
use super::scope::{Piece, SqlFragment};

/// Mean Earth radius used by `geoDistance`, in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// SQL for calling filter function `name`; unknown names and wrong arity are errors.
pub(crate) fn call(name: &str, args: &[SqlFragment]) -> Result<SqlFragment, RuleError> {
    match (name, args) {
        ("geoDistance", [lon_a, lat_a, lon_b, lat_b]) => {
            Ok(geo_distance(lon_a, lat_a, lon_b, lat_b))
        }
        ("geoDistance", _) => Err(RuleError::invalid(format!(
            "geoDistance expects 4 arguments (lonA, latA, lonB, latB), got {}",
            args.len()
        ))),
        ("strftime", [_, ..]) => Ok(strftime(args)),
        ("strftime", []) => Err(RuleError::invalid("strftime expects a format argument")),
        _ => Err(RuleError::invalid(format!("unknown function `{name}`"))),
    }
}

/// Haversine distance in km between two (lon, lat) points given in degrees.
fn geo_distance(
    lon_a: &SqlFragment,
    lat_a: &SqlFragment,
    lon_b: &SqlFragment,
    lat_b: &SqlFragment,
) -> SqlFragment {
    let half_sin_squared = |a: &SqlFragment, b: &SqlFragment| {
        SqlFragment::concat(&[
            Piece::Raw("pow(sin(radians(("),
            Piece::Sql(b),
            Piece::Raw(") - ("),
            Piece::Sql(a),
            Piece::Raw(")) / 2), 2)"),
        ])
    };
    let cos_of = |x: &SqlFragment| {
        SqlFragment::concat(&[Piece::Raw("cos(radians("), Piece::Sql(x), Piece::Raw("))")])
    };
    let diameter = format!("({:.1} * asin(min(1.0, sqrt(", 2.0 * EARTH_RADIUS_KM);
    SqlFragment::concat(&[
        Piece::Raw(&diameter),
        Piece::Sql(&half_sin_squared(lat_a, lat_b)),
        Piece::Raw(" + "),
        Piece::Sql(&cos_of(lat_a)),
        Piece::Raw(" * "),
        Piece::Sql(&cos_of(lat_b)),
        Piece::Raw(" * "),
        Piece::Sql(&half_sin_squared(lon_a, lon_b)),
        Piece::Raw("))))"),
    ])
}

/// `strftime(format, value?, modifiers…)`, giving `''` instead of NULL.
fn strftime(args: &[SqlFragment]) -> SqlFragment {
    let mut out = SqlFragment::raw("COALESCE(strftime(");
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.sql.push_str(", ");
        }
        out.push(arg);
    }
    out.sql.push_str("), '')");
    out
}

#[cfg(test)]
mod tests {
    use super::super::scope::SqlValue;
    use super::*;

    fn param(v: f64) -> SqlFragment {
        SqlFragment::param(SqlValue::Real(v))
    }

    #[test]
    fn geo_distance_is_haversine_over_sqlite_math_functions() {
        let (lon_a, lat_a) = (
            SqlFragment::raw("\"t\".\"lon\""),
            SqlFragment::raw("\"t\".\"lat\""),
        );

        let got =
            call("geoDistance", &[lon_a, lat_a, param(13.4), param(52.5)]).expect("four args");

        assert_eq!(
            got.sql,
            "(12742.0 * asin(min(1.0, sqrt(\
             pow(sin(radians((?) - (\"t\".\"lat\")) / 2), 2) + \
             cos(radians(\"t\".\"lat\")) * cos(radians(?)) * \
             pow(sin(radians((?) - (\"t\".\"lon\")) / 2), 2)))))"
        );
        assert_eq!(
            got.params,
            vec![
                SqlValue::Real(52.5),
                SqlValue::Real(52.5),
                SqlValue::Real(13.4)
            ],
            "params follow placeholder order, repeated where an argument is used twice"
        );
        let opens = got.sql.matches('(').count();
        assert_eq!(opens, got.sql.matches(')').count(), "balanced parentheses");
    }

    #[test]
    fn strftime_never_yields_null() {
        let got = call(
            "strftime",
            &[param(1.0), SqlFragment::raw("\"t\".\"created\"")],
        )
        .expect("valid");

        assert_eq!(got.sql, "COALESCE(strftime(?, \"t\".\"created\"), '')");
        assert_eq!(got.params.len(), 1);
    }

    #[test]
    fn wrong_arity_and_unknown_functions_are_rejected() {
        let one = [param(1.0)];
        for (name, args, why) in [
            ("geoDistance", &one[..], "too few arguments"),
            ("strftime", &[][..], "missing format"),
            ("load_extension", &one[..], "not a filter function"),
            ("GEODISTANCE", &one[..], "names are case-sensitive"),
        ] {
            assert!(call(name, args).is_err(), "{name} ({why}) should fail");
        }
    }
}
