//! SQLite's dynamic values across PostgreSQL's static types. A parameter
//! ([`Param`]) takes the type the server inferred for its placeholder and is
//! encoded as that type when the value converts exactly (an integer for a
//! `double precision` within ±2^53, text for `jsonb`, 0/1 for `boolean`);
//! otherwise the statement fails with a message saying why, never with a
//! different value. A result column ([`Cell`]) reads back as the storage
//! class SQLite would give: integers, reals, text (JSON as its text), and
//! booleans as 0/1.

use std::error::Error;

use postgres::types::private::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::rules::SqlValue;

type BoxError = Box<dyn Error + Sync + Send>;

/// The largest integer a double holds exactly.
const EXACT_INTEGER: i64 = 1 << 53;

/// jsonb's binary format: a version byte, then the JSON text.
const JSONB_VERSION: u8 = 1;

/// A value bound to a placeholder of whatever type the server inferred.
#[derive(Debug)]
pub struct Param<'a>(pub &'a SqlValue);

fn refuse(value: &SqlValue, ty: &Type) -> BoxError {
    format!("{value:?} cannot be stored exactly as PostgreSQL's {ty}").into()
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Integer(i) => integer(*i, self.0, ty, out),
            SqlValue::Real(f) => real(*f, self.0, ty, out),
            SqlValue::Text(s) => text(s, self.0, ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn integer(i: i64, value: &SqlValue, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    match *ty {
        Type::INT8 => i.to_sql(ty, out),
        Type::INT4 => i32::try_from(i)
            .map_err(|_| refuse(value, ty))?
            .to_sql(ty, out),
        Type::INT2 => i16::try_from(i)
            .map_err(|_| refuse(value, ty))?
            .to_sql(ty, out),
        // Exact: every integer within ±2^53 is a double.
        Type::FLOAT8 if (-EXACT_INTEGER..=EXACT_INTEGER).contains(&i) => (i as f64).to_sql(ty, out),
        Type::BOOL if i == 0 || i == 1 => (i == 1).to_sql(ty, out),
        Type::JSONB => {
            out.extend_from_slice(&[JSONB_VERSION]);
            out.extend_from_slice(i.to_string().as_bytes());
            Ok(IsNull::No)
        }
        Type::JSON => {
            out.extend_from_slice(i.to_string().as_bytes());
            Ok(IsNull::No)
        }
        // SQLite's text form of an integer is its decimal digits.
        ref t if is_text(t) => i.to_string().as_str().to_sql(&Type::TEXT, out),
        _ => Err(refuse(value, ty)),
    }
}

fn real(f: f64, value: &SqlValue, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    match *ty {
        Type::FLOAT8 => f.to_sql(ty, out),
        // Checked: the f32 round-trips.
        Type::FLOAT4 if f64::from(f as f32) == f => (f as f32).to_sql(ty, out),
        // A real bound to an integer column: only when it is one.
        // Checked: whole and in range.
        Type::INT8 if f.fract() == 0.0 && f.abs() < 9.2e18 => (f as i64).to_sql(ty, out),
        // Text or JSON would need SQLite's own digits ("%!.15g"): the
        // caller converts to text itself rather than get other digits.
        _ => Err(refuse(value, ty)),
    }
}

fn text(s: &str, value: &SqlValue, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    if s.contains('\0') {
        return Err("text with a NUL character cannot be stored in PostgreSQL".into());
    }
    match *ty {
        Type::JSONB => {
            out.extend_from_slice(&[JSONB_VERSION]);
            out.extend_from_slice(s.as_bytes());
            Ok(IsNull::No)
        }
        Type::JSON => {
            out.extend_from_slice(s.as_bytes());
            Ok(IsNull::No)
        }
        ref t if is_text(t) => s.to_sql(&Type::TEXT, out),
        _ => Err(refuse(value, ty)),
    }
}

/// A result column read as the storage class SQLite would give it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell(pub SqlValue);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let value = match *ty {
            Type::INT8 => SqlValue::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => SqlValue::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => SqlValue::Integer(i16::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => SqlValue::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => SqlValue::Real(f32::from_sql(ty, raw)?.into()),
            Type::BOOL => SqlValue::Integer(bool::from_sql(ty, raw)?.into()),
            Type::NUMERIC => numeric(raw)?,
            Type::JSONB => match raw.split_first() {
                Some((&JSONB_VERSION, json)) => {
                    SqlValue::Text(std::str::from_utf8(json)?.to_owned())
                }
                _ => return Err("unknown jsonb format version".into()),
            },
            Type::JSON => SqlValue::Text(std::str::from_utf8(raw)?.to_owned()),
            ref t if is_text(t) => SqlValue::Text(String::from_sql(&Type::TEXT, raw)?),
            ref t => return Err(format!("PostgreSQL's {t} has no SQLite counterpart here").into()),
        };
        Ok(Cell(value))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell(SqlValue::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A result column of SQL a person wrote: as [`Cell`], and the types SQLite
/// has no counterpart for as the text that names them unambiguously: a
/// `timestamptz` as UTC (`2006-01-02 15:04:05.000Z`, PocketBase's form), a
/// `timestamp` the same without the zone, a `date`, a `uuid`, and `bytea`
/// as SQLite's blob would be shown (base64).
#[derive(Debug, Clone, PartialEq)]
pub struct Shown(pub SqlValue);

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl<'a> FromSql<'a> for Shown {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let text = match *ty {
            Type::TIMESTAMPTZ | Type::TIMESTAMP => {
                let micros = i64::from_sql(&Type::INT8, raw)?;
                let at =
                    chrono::DateTime::from_timestamp_micros(micros.saturating_add(PG_EPOCH_MICROS))
                        .ok_or("a timestamp out of range")?;
                let zone = if *ty == Type::TIMESTAMPTZ { "Z" } else { "" };
                format!("{}{zone}", at.format("%Y-%m-%d %H:%M:%S%.3f"))
            }
            Type::DATE => {
                let days = i32::from_sql(&Type::INT4, raw)?;
                let at = chrono::DateTime::from_timestamp(
                    i64::from(days) * 86_400 + PG_EPOCH_MICROS / 1_000_000,
                    0,
                )
                .ok_or("a date out of range")?;
                at.format("%Y-%m-%d").to_string()
            }
            Type::UUID => {
                let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                if hex.len() != 32 {
                    return Err("a malformed uuid".into());
                }
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )
            }
            Type::BYTEA => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(raw)
            }
            _ => return Cell::from_sql(ty, raw).map(|c| Shown(c.0)),
        };
        Ok(Shown(SqlValue::Text(text)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Shown(SqlValue::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `numeric` (what `sum()` and `avg()` of integers give): an integer when
/// whole and within i64, else the nearest double (correctly rounded from
/// its decimal digits), as SQLite's would be; NaN as NULL.
fn numeric(raw: &[u8]) -> Result<SqlValue, BoxError> {
    let word = |i: usize| -> Result<i16, BoxError> {
        raw.get(i..i + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a truncated numeric".into())
    };
    let (digits, weight, sign) = (word(0)?, word(2)?, word(4)? as u16);
    const NEGATIVE: u16 = 0x4000;
    const NAN: u16 = 0xC000;
    const INFINITE: u16 = 0xD000;
    const NEGATIVE_INFINITE: u16 = 0xF000;
    match sign {
        NAN => return Ok(SqlValue::Null),
        INFINITE => return Ok(SqlValue::Real(f64::INFINITY)),
        NEGATIVE_INFINITE => return Ok(SqlValue::Real(f64::NEG_INFINITY)),
        _ => {}
    }
    // Base-10,000 digits, the first weighted 10000^weight.
    let mut whole: Option<i128> = Some(0);
    let mut text = String::from(if sign == NEGATIVE { "-0" } else { "0" });
    let count = digits.max(0) as usize;
    for n in 0..count {
        let digit = word(8 + 2 * n)?;
        let power = i32::from(weight) - n as i32;
        text.push_str(&format!("{digit:04}"));
        whole = match (whole, power) {
            (Some(w), p) if p >= 0 => 10_000i128
                .checked_pow(p as u32)
                .and_then(|scale| w.checked_add(i128::from(digit) * scale)),
            (w, _) if digit == 0 => w,
            _ => None,
        };
    }
    let exponent = 4 * (i32::from(weight) + 1 - count as i32);
    let negative = sign == NEGATIVE;
    match whole
        .map(|w| if negative { -w } else { w })
        .map(i64::try_from)
    {
        Some(Ok(i)) => Ok(SqlValue::Integer(i)),
        _ => Ok(SqlValue::Real(format!("{text}e{exponent}").parse::<f64>()?)),
    }
}
