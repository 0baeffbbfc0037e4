//! Go's own conversions where their error texts reach a user: `%q` quoting, `strconv.ParseInt`
//! and `time.Parse(time.RFC3339, ...)`, as the apiserver decodes query parameters with them
//! (`strconv.ParseInt: parsing "x": invalid syntax`, `parsing time "x" as
//! "2006-01-02T15:04:05Z07:00": cannot parse "x" as "2006"`).

use chrono::{DateTime, NaiveDate, Utc};

/// A string as Go's `%q` (`strconv.Quote`) prints it in an error message: double quotes; `\"`,
/// `\\` and the control characters escaped; other characters as they are.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => match c as u32 {
                n if n <= 0xffff => out.push_str(&format!("\\u{n:04x}")),
                n => out.push_str(&format!("\\U{n:08x}")),
            },
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `x-forwarded-for` is `X-Forwarded-For`; a name
/// with a byte that is not a token character (a space, say) stays as it is.
pub fn canonical_header_key(name: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(token) {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// `strconv.ParseInt(s, 10, 64)`, with Go's error text.
///
/// # Errors
/// `strconv.ParseInt: parsing "<s>": invalid syntax` (or `value out of range`).
pub fn parse_int(s: &str) -> Result<i64, String> {
    use std::num::IntErrorKind;
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {}: {why}", quote(s))
    })
}

/// How the `time` package quotes values in its errors: bytes outside printable ASCII as `\xNN`.
fn time_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if !c.is_ascii() || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Go's `time.RFC3339` layout.
pub const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// One or two digits (exactly two when `fixed`), as the `time` package reads a number.
fn two_digits(s: &str, fixed: bool) -> Option<(u32, &str)> {
    let b = s.as_bytes();
    let digit = |i: usize| {
        b.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| u32::from(c - b'0'))
    };
    let first = digit(0)?;
    match digit(1) {
        Some(second) => Some((first * 10 + second, &s[2..])),
        None if fixed => None,
        None => Some((first, &s[1..])),
    }
}

/// `time.Parse(time.RFC3339, value)`: the time in UTC, or Go's error text. Go walks the layout
/// element by element (`2006`, `-`, `01`, ...) and names the first one the value does not
/// match; fractional seconds are accepted after the seconds, as Go does.
///
/// # Errors
/// Go's `ParseError` text.
pub fn parse_rfc3339(value: &str) -> Result<DateTime<Utc>, String> {
    let cannot = |rest: &str, elem: &str| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            time_quote(value),
            time_quote(RFC3339),
            time_quote(rest),
            time_quote(elem)
        )
    };
    let out_of_range =
        |what: &str| format!("parsing time {}: {what} out of range", time_quote(value));
    let literal = |rest: &'_ str, lit: char| -> Result<String, String> {
        rest.strip_prefix(lit)
            .map(str::to_string)
            .ok_or_else(|| cannot(rest, &lit.to_string()))
    };
    // 2006
    let year_digits = value
        .get(..4)
        .filter(|y| y.bytes().all(|b| b.is_ascii_digit()));
    let Some(year) = year_digits.and_then(|y| y.parse::<i32>().ok()) else {
        return Err(cannot(value, "2006"));
    };
    let rest = literal(&value[4..], '-')?;
    let (month, after) = two_digits(&rest, true).ok_or_else(|| cannot(&rest, "01"))?;
    if !(1..=12).contains(&month) {
        return Err(out_of_range("month"));
    }
    let rest = literal(after, '-')?;
    let (day, after) = two_digits(&rest, true).ok_or_else(|| cannot(&rest, "02"))?;
    let rest = literal(after, 'T')?;
    let (hour, after) = two_digits(&rest, false).ok_or_else(|| cannot(&rest, "15"))?;
    if hour >= 24 {
        return Err(out_of_range("hour"));
    }
    let rest = literal(after, ':')?;
    let (minute, after) = two_digits(&rest, true).ok_or_else(|| cannot(&rest, "04"))?;
    if minute >= 60 {
        return Err(out_of_range("minute"));
    }
    let rest = literal(after, ':')?;
    let (second, mut rest) = two_digits(&rest, true).ok_or_else(|| cannot(&rest, "05"))?;
    if second >= 60 {
        return Err(out_of_range("second"));
    }
    // A fractional second the layout does not name: all its digits are read, nine are kept.
    let mut nanos = 0u32;
    let b = rest.as_bytes();
    if b.len() >= 2 && (b[0] == b'.' || b[0] == b',') && b[1].is_ascii_digit() {
        let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let digits = &rest[1..n.min(10)];
        nanos = digits.parse::<u32>().unwrap_or(0) * 10u32.pow(9 - digits.len() as u32);
        rest = &rest[n..];
    }
    // Z07:00
    let zone_at = rest;
    let offset_seconds: i64 = if let Some(after) = rest.strip_prefix('Z') {
        rest = after;
        0
    } else {
        let z = rest.as_bytes();
        let pair = |i: usize| {
            let (a, b) = (z[i], z[i + 1]);
            (a.is_ascii_digit() && b.is_ascii_digit())
                .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        };
        let parsed = (z.len() >= 6 && z[3] == b':')
            .then(|| {
                let (h, m) = (pair(1)?, pair(4)?);
                let sign = match z[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                Some((sign, h, m))
            })
            .flatten();
        let Some((sign, h, m)) = parsed else {
            return Err(cannot(zone_at, "Z07:00"));
        };
        if h > 24 {
            return Err(out_of_range("time zone offset hour"));
        }
        if m > 60 {
            return Err(out_of_range("time zone offset minute"));
        }
        rest = &rest[6..];
        sign * (i64::from(h) * 3600 + i64::from(m) * 60)
    };
    if !rest.is_empty() {
        return Err(format!(
            "parsing time {}: extra text: {}",
            time_quote(value),
            time_quote(rest)
        ));
    }
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| out_of_range("day"))?;
    let local = date
        .and_hms_nano_opt(hour, minute, second, nanos)
        .ok_or_else(|| out_of_range("second"))?;
    Ok(local.and_utc() - chrono::Duration::seconds(offset_seconds))
}

/// A time as the kubelet writes log timestamps (`RFC3339NanoFixed`: always nine fractional
/// digits).
pub fn format_rfc3339_nano_fixed(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_parse_as_strconv_does() {
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(parse_int("-3"), Ok(-3));
        assert_eq!(
            parse_int(""),
            Err("strconv.ParseInt: parsing \"\": invalid syntax".into())
        );
        assert_eq!(
            parse_int("1&follow=true"),
            Err("strconv.ParseInt: parsing \"1&follow=true\": invalid syntax".into())
        );
        assert_eq!(
            parse_int("99999999999999999999"),
            Err("strconv.ParseInt: parsing \"99999999999999999999\": value out of range".into())
        );
    }

    #[test]
    fn rfc3339_parses_as_time_parse_does() {
        let t = parse_rfc3339("2025-03-04T05:06:07.123456789123+01:30").unwrap();
        assert_eq!(
            format_rfc3339_nano_fixed(t),
            "2025-03-04T03:36:07.123456789Z"
        );
        assert_eq!(
            crate::clock::format_time(parse_rfc3339("2025-03-04T5:06:07Z").unwrap()),
            "2025-03-04T05:06:07Z"
        );
        let err = |v: &str| parse_rfc3339(v).unwrap_err();
        assert_eq!(
            err("abc"),
            "parsing time \"abc\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"abc\" as \"2006\""
        );
        assert_eq!(
            err("2025-03-04"),
            "parsing time \"2025-03-04\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"\" as \"T\""
        );
        assert_eq!(
            err("2025-3-04T00:00:00Z"),
            "parsing time \"2025-3-04T00:00:00Z\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"3-04T00:00:00Z\" as \"01\""
        );
        assert_eq!(
            err("2025-03-04T00:00:00"),
            "parsing time \"2025-03-04T00:00:00\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"\" as \"Z07:00\""
        );
        assert_eq!(
            err("2025-13-04T00:00:00Z"),
            "parsing time \"2025-13-04T00:00:00Z\": month out of range"
        );
        assert_eq!(
            err("2025-02-30T00:00:00Z"),
            "parsing time \"2025-02-30T00:00:00Z\": day out of range"
        );
        assert_eq!(
            err("2025-02-03T00:00:00Zjunk"),
            "parsing time \"2025-02-03T00:00:00Zjunk\": extra text: \"junk\""
        );
    }
}
