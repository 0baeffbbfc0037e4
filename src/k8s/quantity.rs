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

/// Parse a Kubernetes quantity into nano-units (value × 10⁹), rounded up; saturates instead of
/// overflowing. `None` for anything that is not `<sign?><digits>[.<digits>]<suffix?>` with a
/// suffix of `n u m k M G T P E`, `Ki Mi Gi Ti Pi Ei` or `e<int>`/`E<int>`.
pub fn parse_nanos(s: &str) -> Option<i128> {
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
    // (power of ten, power of two)
    let (exp10, exp2): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
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
            (e.clamp(-1_000_000, 1_000_000), 0)
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
    let magnitude = scale_up(mantissa, exp2, scale);
    Some(if negative { -magnitude } else { magnitude })
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
