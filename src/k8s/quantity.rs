//! Resource quantities (`100m`, `128Mi`, `1e3`) as upstream's `resource.Quantity` reads them:
//! one parser for every layer (validation in the apiserver, scheduling, the kubelet).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The regular expression upstream's error names when a string is not a quantity.
pub const FORMAT: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Upstream's message for a string that is not a quantity.
pub fn format_error() -> String {
    format!("quantities must match the regular expression '{FORMAT}'")
}

/// One unit in nano-units.
pub const NANO: i128 = 1_000_000_000;

/// How a quantity was written, which decides how upstream prints it back (`Quantity.Format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// No suffix, or one of `n u m k M G T P E`.
    DecimalSI,
    /// One of `Ki Mi Gi Ti Pi Ei`.
    BinarySI,
    /// `e<int>` or `E<int>`.
    DecimalExponent,
}

/// A parsed quantity: its value in nano-units and the format it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount {
    /// The value × 10⁹, rounded away from zero as upstream rounds to its nano scale.
    pub nanos: i128,
    /// The format upstream keeps for printing.
    pub format: Format,
}

/// The largest binary-suffixed quantity upstream holds (`2^63 - 1`); larger ones are capped.
const MAX_BINARY_NANOS: i128 = i64::MAX as i128 * NANO;

/// Parse a Kubernetes quantity into nano-units (value × 10⁹), rounded up; saturates instead of
/// overflowing. `None` for anything that is not `<sign?><digits>[.<digits>]<suffix?>` with a
/// suffix of `n u m k M G T P E`, `Ki Mi Gi Ti Pi Ei` or `e<int>`/`E<int>`.
pub fn parse_nanos(s: &str) -> Option<i128> {
    parse(s).map(|a| a.nanos)
}

/// Parse a Kubernetes quantity as upstream's `ParseQuantity` does: the value (see
/// [`parse_nanos`]) and the format its suffix implies. A binary-suffixed amount is capped at
/// `2^63 - 1`, and one below 1 counts as decimal, as upstream has it.
pub fn parse(s: &str) -> Option<Amount> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
        negative = bytes[i] == b'-';
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &s[int_start..i];
    let mut frac_digits = "";
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = &s[frac_start..i];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    let suffix = &s[i..];
    // (power of ten, power of two, format)
    let (exp10, exp2, format): (i64, u32, Format) = match suffix {
        "" => (0, 0, Format::DecimalSI),
        "n" => (-9, 0, Format::DecimalSI),
        "u" => (-6, 0, Format::DecimalSI),
        "m" => (-3, 0, Format::DecimalSI),
        "k" => (3, 0, Format::DecimalSI),
        "M" => (6, 0, Format::DecimalSI),
        "G" => (9, 0, Format::DecimalSI),
        "T" => (12, 0, Format::DecimalSI),
        "P" => (15, 0, Format::DecimalSI),
        "E" => (18, 0, Format::DecimalSI),
        "Ki" => (0, 10, Format::BinarySI),
        "Mi" => (0, 20, Format::BinarySI),
        "Gi" => (0, 30, Format::BinarySI),
        "Ti" => (0, 40, Format::BinarySI),
        "Pi" => (0, 50, Format::BinarySI),
        "Ei" => (0, 60, Format::BinarySI),
        _ => {
            let rest = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Beyond ±10⁶ the value saturates or vanishes anyway.
            let e: i64 = rest.parse::<i64>().unwrap_or(if rest.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            });
            (e.clamp(-1_000_000, 1_000_000), 0, Format::DecimalExponent)
        }
    };

    // Mantissa from the significant digits; digits beyond what u128 holds only shift the scale.
    let mut mantissa: u128 = 0;
    let mut scale: i64 = exp10 + 9; // we want value × 10⁹
    let mut significant = 0usize;
    for (idx, c) in int_digits.bytes().chain(frac_digits.bytes()).enumerate() {
        let in_fraction = idx >= int_digits.len();
        if mantissa == 0 && c == b'0' {
            if in_fraction {
                scale -= 1;
            }
            continue;
        }
        if significant < 36 {
            mantissa = mantissa * 10 + u128::from(c - b'0');
            significant += 1;
            if in_fraction {
                scale -= 1;
            }
        } else if !in_fraction {
            // Dropped integer digit: the value is ten times larger than the mantissa says.
            scale += 1;
        }
    }
    let mut magnitude = scale_up(mantissa, exp2, scale);
    let mut format = format;
    if format == Format::BinarySI {
        magnitude = magnitude.min(MAX_BINARY_NANOS);
        if magnitude < NANO {
            format = Format::DecimalSI;
        }
    }
    let nanos = if negative { -magnitude } else { magnitude };
    Some(Amount { nanos, format })
}

/// A quantity as upstream's `Quantity.String()` prints it (its canonical form): `1000m` is
/// `1`, `0.5` is `500m`, `2048Mi` is `2Gi`, `1e3` stays `1e3`. `None` if `s` is not a
/// quantity.
///
/// # Caveats
/// Values beyond about 10²⁸ saturate (see [`parse_nanos`]), where upstream keeps every digit.
pub fn canonical(s: &str) -> Option<String> {
    parse(s).map(|a| a.to_string())
}

impl std::fmt::Display for Amount {
    /// Upstream's `CanonicalizeBytes`: a binary amount that is a whole number of at least 1024
    /// in magnitude prints with the largest binary suffix that divides it; anything else prints
    /// as a decimal whose exponent is a multiple of three, with an SI suffix (`DecimalSI`) or
    /// `e<n>` (`DecimalExponent`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = self.nanos.unsigned_abs();
        let nano = NANO as u128;
        let binary = self.format == Format::BinarySI
            && magnitude >= 1024 * nano
            && magnitude.is_multiple_of(nano);
        if binary {
            let mut units = magnitude / nano;
            let mut times = 0;
            while units.is_multiple_of(1024) {
                units /= 1024;
                times += 1;
            }
            // A power of 1024 beyond `Ei` has no suffix upstream, and prints none.
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                .get(times)
                .copied()
                .unwrap_or("");
            return write!(f, "{sign}{units}{suffix}");
        }
        let mut mantissa = magnitude;
        let mut exponent: i64 = -9;
        while mantissa.is_multiple_of(10) {
            mantissa /= 10;
            exponent += 1;
        }
        let mut digits = mantissa.to_string();
        while exponent.rem_euclid(3) != 0 {
            digits.push('0');
            exponent -= 1;
        }
        let suffix = match self.format {
            Format::DecimalExponent if exponent == 0 => String::new(),
            Format::DecimalExponent => format!("e{exponent}"),
            // An exponent past `E` has no SI suffix upstream, and prints none.
            _ => match exponent {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                _ => "",
            }
            .to_string(),
        };
        write!(f, "{sign}{digits}{suffix}")
    }
}

/// `mantissa × 2^exp2 × 10^exp10`, rounded away from zero, saturating at a bound far above
/// anything an i64 quantity can hold.
fn scale_up(mantissa: u128, exp2: u32, exp10: i64) -> i128 {
    const LIMIT: u128 = i128::MAX as u128 / 4;
    if mantissa == 0 {
        return 0;
    }
    let mut num = mantissa.min(LIMIT);
    for _ in 0..exp2 {
        num = num.saturating_mul(2).min(LIMIT);
    }
    if exp10 >= 0 {
        for _ in 0..exp10 {
            if num == LIMIT {
                break;
            }
            num = num.saturating_mul(10).min(LIMIT);
        }
        num as i128
    } else {
        let mut den: u128 = 1;
        for _ in 0..(-exp10) {
            if den > LIMIT / 10 {
                // The divisor exceeds any mantissa: a tiny positive value, rounded up.
                return 1;
            }
            den *= 10;
        }
        num.div_ceil(den) as i128
    }
}

/// Nano-units to whole units of `10^-decimals`, rounded away from zero, clamped to i64.
pub fn nanos_to(nanos: i128, divisor: i128) -> i64 {
    let q = if nanos >= 0 {
        (nanos + divisor - 1) / divisor
    } else {
        -((-nanos + divisor - 1) / divisor)
    };
    q.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// A cpu quantity in milli-cores, rounded up as upstream's `MilliValue()` does ("100m" → 100,
/// "1.5" → 1500, "1e3" → 1_000_000). `None` if the string is not a quantity.
pub fn parse_cpu_millis(q: &Quantity) -> Option<i64> {
    parse_nanos(&q.0).map(|n| nanos_to(n, 1_000_000))
}

/// A quantity in whole units (bytes for memory), rounded up as upstream's `Value()` does
/// ("128Mi" → 134217728, "1G" → 10⁹, "2Ki" → 2048). `None` if the string is not a quantity.
pub fn parse_bytes(q: &Quantity) -> Option<i64> {
    parse_nanos(&q.0).map(|n| nanos_to(n, NANO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn cpu_quantities() {
        assert_eq!(parse_cpu_millis(&q("100m")), Some(100));
        assert_eq!(parse_cpu_millis(&q("1")), Some(1000));
        assert_eq!(parse_cpu_millis(&q("1.5")), Some(1500));
        assert_eq!(parse_cpu_millis(&q("0.1")), Some(100));
        assert_eq!(parse_cpu_millis(&q(".5")), Some(500));
        assert_eq!(parse_cpu_millis(&q("1e3")), Some(1_000_000));
        assert_eq!(parse_cpu_millis(&q("2k")), Some(2_000_000));
        assert_eq!(parse_cpu_millis(&q("250000u")), Some(250));
        // Sub-milli amounts round up, as MilliValue() does.
        assert_eq!(parse_cpu_millis(&q("0.5m")), Some(1));
        assert_eq!(parse_cpu_millis(&q("1n")), Some(1));
        assert_eq!(parse_cpu_millis(&q("0")), Some(0));
        assert_eq!(parse_cpu_millis(&q("+2")), Some(2000));
    }

    #[test]
    fn memory_quantities() {
        assert_eq!(parse_bytes(&q("128Mi")), Some(128 * 1024 * 1024));
        assert_eq!(parse_bytes(&q("1G")), Some(1_000_000_000));
        assert_eq!(parse_bytes(&q("1e3")), Some(1000));
        assert_eq!(parse_bytes(&q("1E3")), Some(1000));
        assert_eq!(parse_bytes(&q("2Ki")), Some(2048));
        assert_eq!(parse_bytes(&q("1.5Gi")), Some(1536 * 1024 * 1024));
        assert_eq!(parse_bytes(&q("1E")), Some(1_000_000_000_000_000_000));
        assert_eq!(parse_bytes(&q("1Ei")), Some(1 << 60));
        assert_eq!(parse_bytes(&q("100m")), Some(1));
        assert_eq!(parse_bytes(&q("0.1Ki")), Some(103));
        assert_eq!(parse_bytes(&q("1.")), Some(1));
        // Far beyond i64 saturates rather than wrapping.
        assert_eq!(parse_bytes(&q("100Ei")), Some(i64::MAX));
        assert_eq!(parse_bytes(&q("1e999999999999")), Some(i64::MAX));
        assert_eq!(parse_bytes(&q("1e-999999999999")), Some(1));
        assert_eq!(
            parse_bytes(&q("123456789012345678901234567890123456789012")),
            Some(i64::MAX)
        );
        assert_eq!(
            parse_bytes(&q("0.000000000000000000000000000000000000000001")),
            Some(1)
        );
    }

    #[test]
    fn canonical_forms_are_upstreams() {
        // Upstream's TestQuantityParseEmit and TestQuantityString, and the forms a user meets.
        for (written, printed) in [
            ("1000m", "1"),
            ("0.5", "500m"),
            (".5", "500m"),
            ("2", "2"),
            ("100m", "100m"),
            ("1.5", "1500m"),
            ("1080m", "1080m"),
            ("1.08", "1080m"),
            ("1080000000n", "1080m"),
            ("0.001T", "1G"),
            ("1000M", "1G"),
            ("300M", "300M"),
            ("1234567M", "1234567M"),
            ("3k", "3k"),
            ("1000u", "1m"),
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1500Mi", "1500Mi"),
            ("307200Ki", "300Mi"),
            ("1025024Mi", "1001Gi"),
            ("1024Gi", "1Ti"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("0.5Ki", "512"),
            ("1.1Ki", "1126400m"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("3e3", "3e3"),
            ("300e6", "300e6"),
            (".001e12", "1e9"),
            ("0.001e0", "1e-3"),
            ("1000e-12", "1e-9"),
            ("80e-3", "80e-3"),
            ("1e1", "10"),
            ("0", "0"),
            ("00", "0"),
            ("0Mi", "0"),
            ("-0", "0"),
            ("1n", "1n"),
            ("0.0000010800", "1080n"),
            ("10800e-10", "1080e-9"),
            ("0.1n", "1n"),
            ("100Ei", "9223372036854775807"),
        ] {
            assert_eq!(canonical(written).as_deref(), Some(printed), "{written}");
            if printed != "0" {
                let negative = format!("-{written}");
                let expected = format!("-{printed}");
                assert_eq!(canonical(&negative), Some(expected), "{negative}");
            }
        }
        assert_eq!(canonical("+2").as_deref(), Some("2"));
        assert_eq!(canonical("1x"), None);
    }

    #[test]
    fn formats_follow_the_suffix() {
        assert_eq!(parse("1Gi").map(|a| a.format), Some(Format::BinarySI));
        assert_eq!(
            parse("1e3").map(|a| a.format),
            Some(Format::DecimalExponent)
        );
        assert_eq!(parse("1E").map(|a| a.format), Some(Format::DecimalSI));
        // A binary amount below one is decimal, as upstream's parser makes it.
        assert_eq!(parse("0.5Ki").map(|a| a.format), Some(Format::BinarySI));
        assert_eq!(parse("0.0001Ki").map(|a| a.format), Some(Format::DecimalSI));
    }

    #[test]
    fn garbage_quantities() {
        for bad in [
            "", " ", "abc", "1x", "1.2.3", "--1", "Mi", "1 Mi", "1mi", "1KI", "e3", "1e", "1e+",
            ".",
        ] {
            assert_eq!(parse_bytes(&q(bad)), None, "{bad:?}");
            assert_eq!(parse_cpu_millis(&q(bad)), None, "{bad:?}");
        }
    }
}
