//! Value parsers shared by the subcommands' clap definitions: durations with units, ids, digit
//! widths, probabilities.

use std::time::Duration;

use pastry::{DigitBits, Id};

/// The unit a bare number means for a duration option (`--probe-ms 500` is milliseconds,
/// `--churn-session 84` seconds), so old command lines keep their meaning.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BareUnit {
    /// A bare number is milliseconds.
    Millis,
    /// A bare number is seconds.
    Secs,
}

/// Parses a duration: a non-negative decimal number with an optional unit `us`, `ms`, `s`, `m`
/// or `h` (`84s`, `1.4m`, `500ms`); without a unit, `bare` says what the number means.
pub(crate) fn duration(s: &str, bare: BareUnit) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let secs_per_unit = match unit.trim() {
        "" => match bare {
            BareUnit::Millis => 1e-3,
            BareUnit::Secs => 1.0,
        },
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit `{other}` (use us, ms, s, m or h)")),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 84s, 1.4m, 500ms)"))?;
    let secs = v * secs_per_unit;
    if !secs.is_finite() || !(0.0..1e9).contains(&secs) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration whose bare number means milliseconds.
pub(crate) fn millis(s: &str) -> Result<Duration, String> {
    duration(s, BareUnit::Millis)
}

/// A duration whose bare number means seconds.
pub(crate) fn secs(s: &str) -> Result<Duration, String> {
    duration(s, BareUnit::Secs)
}

/// A node id: 32 hex digits, optionally after `0x`.
pub(crate) fn id(s: &str) -> Result<Id, String> {
    s.parse::<Id>()
        .map_err(|e| format!("{e} (expected 32 hex digits)"))
}

/// A size in bytes: a whole number with an optional binary unit (`B`; `K`, `k`, `KiB`, `kB`;
/// `M`, `MiB`, `MB`; `G`, `GiB`, `GB`: all powers of 1024): `8MiB`, `512k`, `1048576`.
pub(crate) fn bytes(s: &str) -> Result<usize, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (expected e.g. 8MiB, 512KiB, 1048576)"))?;
    let mul: usize = match unit.trim() {
        "" | "B" => 1,
        "k" | "K" | "KiB" | "kB" => 1 << 10,
        "M" | "MiB" | "MB" => 1 << 20,
        "G" | "GiB" | "GB" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` (B, KiB, MiB, GiB)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// A node's byte budget: a size ([`bytes`]) of at least 256 KiB.
pub(crate) fn buffer_bytes(s: &str) -> Result<usize, String> {
    let n = bytes(s)?;
    if n < pastry::node::MIN_BUFFER_BYTES {
        return Err(format!(
            "{n} bytes is below the minimum of {} (256KiB)",
            pastry::node::MIN_BUFFER_BYTES
        ));
    }
    Ok(n)
}

/// The digit width `b`: 1, 2 or 4.
pub(crate) fn digit_bits(s: &str) -> Result<DigitBits, String> {
    s.parse::<u8>()
        .ok()
        .and_then(DigitBits::new)
        .ok_or_else(|| "expected 1, 2 or 4".to_string())
}

/// A probability in `[0, 1]`.
pub(crate) fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err("expected a probability between 0 and 1".into())
    }
}

/// A fraction in `[0, 1)`.
pub(crate) fn fraction_below_one(s: &str) -> Result<f64, String> {
    let p = probability(s)?;
    if p < 1.0 {
        Ok(p)
    } else {
        Err("expected a fraction at least 0 and below 1".into())
    }
}

/// A finite number above 0.
pub(crate) fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}`: expected a number above 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_bare_numbers_keep_their_meaning() {
        assert_eq!(secs("84s").unwrap(), Duration::from_secs(84));
        assert_eq!(secs("1.4m").unwrap(), Duration::from_secs(84));
        assert_eq!(secs("84").unwrap(), Duration::from_secs(84));
        assert_eq!(secs("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(millis("500").unwrap(), Duration::from_millis(500));
        assert_eq!(millis("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(millis("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(millis("250us").unwrap(), Duration::from_micros(250));
        for bad in ["", "s", "-1s", "1.4x", "1e400", "NaN", "inf"] {
            assert!(secs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_values() {
        assert!(digit_bits("4").is_ok() && digit_bits("3").is_err());
        assert!(probability("1").is_ok() && probability("1.1").is_err());
        assert!(fraction_below_one("0.5").is_ok() && fraction_below_one("1").is_err());
        assert!(positive("0").is_err() && positive("0.1").is_ok());
        assert_eq!(bytes("8MiB"), Ok(8 << 20));
        assert_eq!(bytes("512k"), Ok(512 << 10));
        assert_eq!(bytes("1048576"), Ok(1 << 20));
        assert!(buffer_bytes("255KiB").is_err() && buffer_bytes("256KiB").is_ok());
        for bad in ["", "MiB", "8 XB", "-1", "99999999999999999999G"] {
            assert!(bytes(bad).is_err(), "{bad}");
        }
        assert!(id("00112233445566778899aabbccddeeff").is_ok() && id("zz").is_err());
    }
}
