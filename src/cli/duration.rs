//! Go's duration syntax (`time.ParseDuration`), because users copy interval values from Scope's
//! command lines (spec `cli.md`: "`DUR` uses Go's duration syntax").
//!
//! Owns: turning `"1m30s"` into a [`Duration`] with Go's grammar, units, fraction rounding and
//! range (at most `i64::MAX` nanoseconds). Does not own: which durations an option accepts (zero
//! intervals are refused by the option parser in `cli`, not here).

use std::fmt;
use std::time::Duration;

/// Why a duration string was refused. `Display` is Go's text without its `time: ` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Not Go duration syntax at all (`"abc"`, `""`, `"1.s.5"`, `".s"`).
    Invalid(String),
    /// A number without a unit (`"5"`); Go only allows a unitless `"0"`.
    MissingUnit(String),
    /// A unit other than `ns us µs μs ms s m h`.
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration as written.
        duration: String,
    },
    /// A duration below zero; no option of ours means anything by a negative interval.
    Negative(String),
    /// More than Go's largest duration (`i64::MAX` nanoseconds, about 292 years).
    TooLarge(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(d) => write!(f, "invalid duration {d:?}"),
            Self::MissingUnit(d) => write!(f, "missing unit in duration {d:?}"),
            Self::UnknownUnit { unit, duration } => {
                write!(f, "unknown unit {unit:?} in duration {duration:?}")
            }
            Self::Negative(d) => write!(f, "negative duration {d:?}"),
            Self::TooLarge(d) => write!(f, "duration {d:?} is too large"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Go's largest duration in nanoseconds: `time.Duration` is an `int64`.
const MAX_NANOS: u64 = i64::MAX as u64;

/// Nanoseconds per unit; both micro signs are Go's (U+00B5 and U+03BC).
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3600 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a duration the way Go's `time.ParseDuration` does: a sequence of decimal numbers,
/// each with an optional fraction and a unit (`"300ms"`, `"1.5h"`, `"2h45m"`), or a bare `"0"`.
/// A leading `+` is allowed; a negative result is an error (`"-0s"` is zero, as in Go).
pub fn parse_go_duration(s: &str) -> Result<Duration, DurationError> {
    let orig = s;
    let invalid = || DurationError::Invalid(orig.to_owned());
    let too_large = || DurationError::TooLarge(orig.to_owned());

    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    // Go accumulates in u64 and compares with 1<<63 so that `-9223372036854775808ns` parses;
    // we refuse negatives anyway, so the positive limit is checked after the loop.
    let mut total: u64 = 0;
    while !rest.is_empty() {
        // The next character must be [0-9.].
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let (int_part, after_int) = split_digits(rest);
        let whole = leading_int(int_part).ok_or_else(too_large)?;
        rest = after_int;
        let mut frac = (0u64, 1f64);
        let mut has_frac_digits = false;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (frac_part, after_frac) = split_digits(after_dot);
            frac = leading_fraction(frac_part);
            has_frac_digits = !frac_part.is_empty();
            rest = after_frac;
        }
        if int_part.is_empty() && !has_frac_digits {
            // "." or ".s": a number needs at least one digit.
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(orig.to_owned()));
        }
        let (unit, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        let per_unit = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_owned(),
            duration: orig.to_owned(),
        })?;
        let mut nanos = whole.checked_mul(per_unit).ok_or_else(too_large)?;
        let (frac_value, frac_scale) = frac;
        if frac_value > 0 {
            // Go computes the fraction in float64 and truncates; keep that rounding exactly.
            let frac_nanos = (frac_value as f64 * (per_unit as f64 / frac_scale)) as u64;
            nanos = nanos.checked_add(frac_nanos).ok_or_else(too_large)?;
        }
        total = total.checked_add(nanos).ok_or_else(too_large)?;
        if total > MAX_NANOS {
            return Err(too_large());
        }
    }
    if negative && total > 0 {
        return Err(DurationError::Negative(orig.to_owned()));
    }
    Ok(Duration::from_nanos(total))
}

/// Splits `s` after its leading ASCII digits.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// Go's `leadingInt` on an all-digit string: `None` when it exceeds the duration range.
fn leading_int(digits: &str) -> Option<u64> {
    let mut v: u64 = 0;
    for d in digits.bytes() {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        if v > MAX_NANOS + 1 {
            return None;
        }
    }
    Some(v)
}

/// Go's `leadingFraction` on an all-digit string: the digits as an integer and the power of ten
/// to divide it by. Digits beyond what fits are dropped, as Go does, rather than overflowing.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let mut value: u64 = 0;
    let mut scale = 1f64;
    let mut overflow = false;
    for d in digits.bytes() {
        if overflow {
            continue;
        }
        if value > (MAX_NANOS + 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(d - b'0');
        if next > MAX_NANOS + 1 {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    // Valid cases, mostly from Go's own `parseDurationTests` (time_test.go).
    #[test]
    fn parses_go_durations() {
        let table: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("-0s", Duration::ZERO),
            ("5s", Duration::from_secs(5)),
            ("30s", Duration::from_secs(30)),
            ("1478s", Duration::from_secs(1478)),
            ("+5s", Duration::from_secs(5)),
            ("5.0s", Duration::from_secs(5)),
            ("5.6s", Duration::from_millis(5600)),
            ("5.s", Duration::from_secs(5)),
            (".5s", Duration::from_millis(500)),
            ("1.0s", Duration::from_secs(1)),
            ("1.00s", Duration::from_secs(1)),
            ("1.004s", Duration::from_millis(1004)),
            ("1.0040s", Duration::from_millis(1004)),
            ("100.00100s", Duration::from_millis(100_001)),
            ("10ns", ns(10)),
            ("11us", Duration::from_micros(11)),
            ("12\u{b5}s", Duration::from_micros(12)),
            ("12\u{3bc}s", Duration::from_micros(12)),
            ("300us", Duration::from_micros(300)),
            ("300µs", Duration::from_micros(300)),
            ("13ms", Duration::from_millis(13)),
            ("500ms", Duration::from_millis(500)),
            ("1s", Duration::from_secs(1)),
            ("14s", Duration::from_secs(14)),
            ("15m", Duration::from_secs(15 * 60)),
            ("16h", Duration::from_secs(16 * 3600)),
            ("1.5h", Duration::from_secs(5400)),
            ("3h30m", Duration::from_secs(3 * 3600 + 30 * 60)),
            ("2h45m", Duration::from_secs(2 * 3600 + 45 * 60)),
            ("1m30s", Duration::from_secs(90)),
            ("10.5s4m", Duration::from_millis(4 * 60_000 + 10_500)),
            ("1h2m3s4ms5us6ns", ns(3_723_004_005_006)),
            ("39h9m14.425s", Duration::from_millis(140_954_425)),
            ("52763797000ns", ns(52_763_797_000)),
            ("0.3333333333333333333h", ns(20 * 60 * 1_000_000_000)),
            ("9007199254740993ns", ns(9_007_199_254_740_993)),
            ("9223372036854775807ns", ns(9_223_372_036_854_775_807)),
            ("9223372036854775.807us", ns(9_223_372_036_854_775_807)),
            ("9223372036s854ms775us807ns", ns(9_223_372_036_854_775_807)),
            ("0.100000000000000000000h", ns(6 * 60 * 1_000_000_000)),
            (
                "0.830103483285477580700h",
                ns(49 * 60 * 1_000_000_000 + 48_372_539_827),
            ),
        ];
        for &(text, want) in table {
            assert_eq!(parse_go_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_with_its_text() {
        let table: &[(&str, &str)] = &[
            ("", r#"invalid duration """#),
            ("3", r#"missing unit in duration "3""#),
            ("5", r#"missing unit in duration "5""#),
            ("1.5", r#"missing unit in duration "1.5""#),
            ("5x", r#"unknown unit "x" in duration "5x""#),
            ("1sec", r#"unknown unit "sec" in duration "1sec""#),
            ("1d", r#"unknown unit "d" in duration "1d""#),
            ("1S", r#"unknown unit "S" in duration "1S""#),
            ("1s2x", r#"unknown unit "x" in duration "1s2x""#),
            ("-", r#"invalid duration "-""#),
            ("+", r#"invalid duration "+""#),
            ("s", r#"invalid duration "s""#),
            (".", r#"invalid duration ".""#),
            ("-.", r#"invalid duration "-.""#),
            (".s", r#"invalid duration ".s""#),
            ("+.s", r#"invalid duration "+.s""#),
            (" 1s", r#"invalid duration " 1s""#),
            ("1s ", r#"unknown unit "s " in duration "1s ""#),
            ("1e3s", r#"unknown unit "e" in duration "1e3s""#),
            ("--1s", r#"invalid duration "--1s""#),
            ("-1s", r#"negative duration "-1s""#),
            ("-1.5h", r#"negative duration "-1.5h""#),
            (
                "9223372036854775808ns",
                r#"duration "9223372036854775808ns" is too large"#,
            ),
            (
                "9223372036854775.808us",
                r#"duration "9223372036854775.808us" is too large"#,
            ),
            ("3000000h", r#"duration "3000000h" is too large"#),
            (
                "99999999999999999999s",
                r#"duration "99999999999999999999s" is too large"#,
            ),
        ];
        for &(text, want) in table {
            match parse_go_duration(text) {
                Err(e) => assert_eq!(e.to_string(), want, "{text:?}"),
                Ok(d) => panic!("{text:?} parsed as {d:?}"),
            }
        }
    }

    #[test]
    fn every_error_variant_has_its_text() {
        let cases = [
            (
                DurationError::Invalid("x".into()),
                r#"invalid duration "x""#,
            ),
            (
                DurationError::MissingUnit("1".into()),
                r#"missing unit in duration "1""#,
            ),
            (
                DurationError::UnknownUnit {
                    unit: "x".into(),
                    duration: "5x".into(),
                },
                r#"unknown unit "x" in duration "5x""#,
            ),
            (
                DurationError::Negative("-1s".into()),
                r#"negative duration "-1s""#,
            ),
            (
                DurationError::TooLarge("300y".into()),
                r#"duration "300y" is too large"#,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,16}") {
            let _ = parse_go_duration(&s);
        }

        #[test]
        fn whole_numbers_scale_by_their_unit(n in 0u64..1_000_000, unit in 0usize..8) {
            let (name, nanos) = [
                ("ns", 1), ("us", 1_000), ("µs", 1_000), ("μs", 1_000), ("ms", 1_000_000),
                ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000u64),
            ][unit];
            proptest::prop_assert_eq!(
                parse_go_duration(&format!("{n}{name}")),
                Ok(Duration::from_nanos(n * nanos))
            );
        }
    }
}
