//! Numbers as Docker spells them: sizes with binary units (`512m`, `1.5g`), decimals (`0.5`
//! CPUs), CPU lists (`0-3,5`); and sizes printed back in binary units (`32MiB`).

/// Binary multiples by unit letter, as Docker's `RAMInBytes` (k is 1024, not 1000).
const UNITS: [(u8, u128); 5] = [
    (b'k', 1 << 10),
    (b'm', 1 << 20),
    (b'g', 1 << 30),
    (b't', 1 << 40),
    (b'p', 1 << 50),
];

/// A size in bytes: a decimal number, an optional space and an optional unit (`k`, `m`, `g`,
/// `t`, `p`, then an optional `i` and `b`, or `b` alone), case-insensitive, as Docker's
/// `RAMInBytes`: `100`, `512m`, `1.5g`, `64MiB`. A fraction of a byte is dropped. `None` when
/// it is not such a number or does not fit in an `i64`.
pub fn parse_bytes(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let unit = match unit.strip_prefix(' ') {
        Some("") => return None,
        Some(unit) => unit,
        None => unit,
    };
    let multiplier = match unit.as_bytes() {
        [] | [b'b'] => 1,
        [letter] | [letter, b'b'] | [letter, b'i'] | [letter, b'i', b'b'] => {
            UNITS.iter().find(|(u, _)| u == letter)?.1
        }
        _ => return None,
    };
    let (whole, fraction) = parse_decimal(number)?;
    let scale = 10u128.pow(fraction.1);
    let bytes = whole
        .checked_mul(multiplier)?
        .checked_add(fraction.0.checked_mul(multiplier)? / scale)?;
    i64::try_from(bytes).ok()
}

/// A decimal number scaled by 10^`places` (`"0.5"`, 9 -> 500000000); `None` when it is not a
/// plain non-negative decimal or has more than `places` digits after the point.
pub fn parse_scaled(text: &str, places: u32) -> Option<u64> {
    let (whole, (fraction, digits)) = parse_decimal(text)?;
    if digits > places {
        return None;
    }
    let scaled = whole
        .checked_mul(10u128.pow(places))?
        .checked_add(fraction * 10u128.pow(places - digits))?;
    u64::try_from(scaled).ok()
}

/// Splits `123.45` into 123 and (45, 2 digits). At least one digit before the point, and
/// at least one after it if there is a point.
fn parse_decimal(text: &str) -> Option<(u128, (u128, u32))> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return None,
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 30 {
        return None;
    }
    let whole = whole.parse::<u128>().ok()?;
    let digits = fraction.len() as u32;
    let fraction = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<u128>().ok()?
    };
    Some((whole, (fraction, digits)))
}

/// A size in the largest binary unit it reaches, with at most two decimals: `32MiB`,
/// `1.5GiB`, `512B`.
pub fn format_bytes(bytes: u64) -> String {
    const NAMES: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let unit = UNITS
        .iter()
        .zip(NAMES)
        .rev()
        .find(|((_, size), _)| u128::from(bytes) >= *size);
    let Some(((_, size), name)) = unit else {
        return format!("{bytes}B");
    };
    let value = format!("{:.2}", bytes as f64 / *size as f64);
    let value = value.trim_end_matches('0').trim_end_matches('.');
    format!("{value}{name}")
}

/// A CPU list as the kernel writes and reads them (`0-3,5`): the CPU numbers, in order.
/// `None` when it is not such a list.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim_end_matches('\n').split(',') {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first, last),
            None => (part, part),
        };
        let number = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        let (first, last) = (number(first)?, number(last)?);
        if first > last || last - first > 1 << 16 {
            return None;
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_parsed_as_docker_does() {
        for (text, bytes) in [
            ("100", 100),
            ("100b", 100),
            ("1k", 1024),
            ("1K", 1024),
            ("32m", 32 << 20),
            ("32M", 32 << 20),
            ("32mb", 32 << 20),
            ("32MiB", 32 << 20),
            ("32 m", 32 << 20),
            ("1.5g", 3 << 29),
            ("1.5G", 3 << 29),
            ("0.5k", 512),
            ("1.0001k", 1024),
            ("2t", 2 << 40),
        ] {
            assert_eq!(parse_bytes(text), Some(bytes), "{text}");
        }
        for text in [
            "",
            "abc",
            "m",
            "1x",
            "1.g",
            ".5g",
            "-1",
            "1..2m",
            "1.2.3",
            "1mm",
            "1 ",
            "1gbb",
            "9p9",
            "99999999p",
        ] {
            assert_eq!(parse_bytes(text), None, "{text:?}");
        }
    }

    #[test]
    fn decimals_are_scaled_exactly() {
        assert_eq!(parse_scaled("0.5", 9), Some(500_000_000));
        assert_eq!(parse_scaled("2", 9), Some(2_000_000_000));
        assert_eq!(parse_scaled("0.01", 9), Some(10_000_000));
        assert_eq!(parse_scaled("1.123456789", 9), Some(1_123_456_789));
        assert_eq!(parse_scaled("1.1234567891", 9), None);
        for text in ["", "-1", "abc", ".5", "1.", "1e3", "0x1"] {
            assert_eq!(parse_scaled(text, 9), None, "{text:?}");
        }
    }

    #[test]
    fn sizes_are_printed_in_binary_units() {
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(1023), "1023B");
        assert_eq!(format_bytes(1024), "1KiB");
        assert_eq!(format_bytes(32 << 20), "32MiB");
        assert_eq!(format_bytes(3 << 29), "1.5GiB");
        assert_eq!(format_bytes((33 << 20) + (1 << 19)), "33.5MiB");
        assert_eq!(format_bytes(52_428_800 + 4096), "50MiB");
    }

    #[test]
    fn cpu_lists_are_parsed_as_the_kernel_writes_them() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-3,5\n"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpu_list("5,1,1-2"), Some(vec![1, 2, 5]));
        for text in ["", "a", "1-", "-1", "3-1", "1,,2", "0 1", "+1"] {
            assert_eq!(parse_cpu_list(text), None, "{text:?}");
        }
    }
}
