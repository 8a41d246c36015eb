//! The functions a filter may call: `geoDistance` and `strftime`. Each takes
//! already-compiled argument SQL and returns the call as SQL. `geoDistance`
//! becomes a call to [`GEO_DISTANCE_SQL_FUNCTION`], which the database layer
//! registers on every connection (the bundled SQLite is built without its
//! optional math functions).

use super::error::RuleError;
use super::scope::{Piece, SqlFragment, ValueType};

/// Mean Earth radius used by `geoDistance`, in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Name of the SQL scalar function `(lonA, latA, lonB, latB) → km`.
pub const GEO_DISTANCE_SQL_FUNCTION: &str = "fb_geo_distance";

/// Haversine distance in km between two (lon, lat) points given in degrees.
pub fn haversine_km(lon_a: f64, lat_a: f64, lon_b: f64, lat_b: f64) -> f64 {
    let (phi_a, phi_b) = (lat_a.to_radians(), lat_b.to_radians());
    let d_phi = (lat_b - lat_a).to_radians();
    let d_lambda = (lon_b - lon_a).to_radians();
    let h =
        (d_phi / 2.0).sin().powi(2) + phi_a.cos() * phi_b.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// SQLite's SQL for calling filter function `name`, and what it returns;
/// unknown names and wrong arity are errors (`postgres::call` writes
/// PostgreSQL's).
pub(crate) fn call(
    name: &str,
    args: &[SqlFragment],
) -> Result<(SqlFragment, ValueType), RuleError> {
    match (name, args) {
        ("geoDistance", [lon_a, lat_a, lon_b, lat_b]) => Ok((
            geo_distance(lon_a, lat_a, lon_b, lat_b),
            ValueType::ComputedReal,
        )),
        ("geoDistance", _) => Err(RuleError::invalid(format!(
            "geoDistance expects 4 arguments (lonA, latA, lonB, latB), got {}",
            args.len()
        ))),
        ("strftime", [_, ..]) => Ok((strftime(args), ValueType::ComputedText)),
        ("strftime", []) => Err(RuleError::invalid("strftime expects a format argument")),
        _ => Err(RuleError::invalid(format!("unknown function `{name}`"))),
    }
}

/// `fb_geo_distance(lonA, latA, lonB, latB)`.
fn geo_distance(
    lon_a: &SqlFragment,
    lat_a: &SqlFragment,
    lon_b: &SqlFragment,
    lat_b: &SqlFragment,
) -> SqlFragment {
    let open = format!("{GEO_DISTANCE_SQL_FUNCTION}(");
    SqlFragment::concat(&[
        Piece::Raw(&open),
        Piece::Sql(lon_a),
        Piece::Raw(", "),
        Piece::Sql(lat_a),
        Piece::Raw(", "),
        Piece::Sql(lon_b),
        Piece::Raw(", "),
        Piece::Sql(lat_b),
        Piece::Raw(")"),
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
    fn geo_distance_calls_the_registered_function_with_params_in_order() {
        let (lon_a, lat_a) = (
            SqlFragment::raw("\"t\".\"lon\""),
            SqlFragment::raw("\"t\".\"lat\""),
        );

        let (got, _) =
            call("geoDistance", &[lon_a, lat_a, param(13.4), param(52.5)]).expect("four args");

        assert_eq!(
            got.sql,
            "fb_geo_distance(\"t\".\"lon\", \"t\".\"lat\", ?, ?)"
        );
        assert_eq!(got.params, vec![SqlValue::Real(13.4), SqlValue::Real(52.5)]);
    }

    #[test]
    fn haversine_gives_the_paris_berlin_distance() {
        let km = haversine_km(2.3522, 48.8566, 13.4050, 52.5200);
        assert!((km - 877.5).abs() < 2.0, "{km}");
        assert_eq!(haversine_km(1.0, 2.0, 1.0, 2.0), 0.0);
    }

    #[test]
    fn strftime_never_yields_null() {
        let (got, _) = call(
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
