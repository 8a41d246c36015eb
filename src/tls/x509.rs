//! The two dates of a certificate's validity, read from its DER.
//!
//! Renewal needs only `notBefore`/`notAfter`; a full X.509 parser would add
//! a dozen crates for them. This walks the fixed start of the structure
//! (RFC 5280 §4.1) and nothing else; anything unexpected reads as `None`,
//! which the callers treat as "no usable certificate" (so it is renewed).

/// A certificate's validity window, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// When to renew: once two thirds of the lifetime have passed (30 days
    /// before the end of a 90-day certificate, Let's Encrypt's advice and
    /// Go's autocert default; proportionally earlier for shorter ones).
    pub fn renew_at(&self) -> i64 {
        let lifetime = (self.not_after - self.not_before).max(0);
        self.not_after - lifetime / 3
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const EXPLICIT_0: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element: tag, contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, body, rest) = element(input)?;
    (tag == want).then_some((body, rest))
}

/// Reads the validity of a DER certificate.
pub fn validity(der: &[u8]) -> Option<Validity> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    if let Some((EXPLICIT_0, _, after)) = element(rest) {
        rest = after; // version
    }
    let (_, rest) = expect(rest, INTEGER)?; // serial
    let (_, rest) = expect(rest, SEQUENCE)?; // signature algorithm
    let (_, rest) = expect(rest, SEQUENCE)?; // issuer
    let (window, _) = expect(rest, SEQUENCE)?;
    let (tag, before, rest) = element(window)?;
    let not_before = time(tag, before)?;
    let (tag, after, _) = element(rest)?;
    let not_after = time(tag, after)?;
    Some(Validity {
        not_before,
        not_after,
    })
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn time(tag: u8, raw: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(raw).ok()?.strip_suffix('Z')?;
    let full = match tag {
        UTC_TIME if text.len() == 12 => {
            let yy: u32 = text[..2].parse().ok()?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{text}")
        }
        GENERALIZED_TIME if text.len() == 14 => text.to_owned(),
        _ => return None,
    };
    chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_valid(from: (i32, u8, u8), to: (i32, u8, u8)) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(vec!["ferro.test".to_owned()]).expect("params");
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn validity_is_read_from_utc_and_generalized_times() {
        for (from, to, why) in [
            ((2026, 1, 1), (2026, 4, 1), "UTCTime both ends"),
            ((1990, 6, 15), (2060, 1, 1), "GeneralizedTime after 2049"),
        ] {
            let got = validity(&cert_valid(from, to)).expect(why);
            let ts = |(y, m, d): (i32, u8, u8)| {
                chrono::NaiveDate::from_ymd_opt(y, u32::from(m), u32::from(d))
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| t.and_utc().timestamp())
                    .expect("date")
            };
            assert_eq!(got.not_before, ts(from), "{why}");
            assert_eq!(got.not_after, ts(to), "{why}");
        }
    }

    #[test]
    fn a_ninety_day_certificate_is_renewed_thirty_days_before_it_ends() {
        let v = Validity {
            not_before: 0,
            not_after: 90 * 86_400,
        };
        assert_eq!(v.renew_at(), 60 * 86_400);
    }

    #[test]
    fn garbage_has_no_validity() {
        let good = cert_valid((2026, 1, 1), (2026, 4, 1));
        for (bytes, why) in [
            (&b""[..], "empty"),
            (&b"\x30\x84\xff\xff\xff\xff"[..], "length past the end"),
            (&good[..good.len() / 3], "truncated"),
            (&b"-----BEGIN CERTIFICATE-----"[..], "PEM, not DER"),
        ] {
            assert_eq!(validity(bytes), None, "{why}");
        }
    }
}
