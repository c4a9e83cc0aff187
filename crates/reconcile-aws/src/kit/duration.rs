//! Durations as users write them for timeouts, waits and token lifetimes ("40m", "2h", "1h30m", "30d").

use std::time::Duration;

/// Parses "90s", "40m", "2h", "1h30m", "30d". A bare number is refused: the unit matters.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("\"{s}\" is not a duration; write it like \"40m\", \"2h\" or \"90s\"");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    if total == 0 {
        return Err(format!("\"{s}\" is zero; give a positive duration"));
    }
    Ok(Duration::from_secs(total))
}

pub fn check_duration(s: &str) -> Result<(), String> {
    parse_duration(s).map(|_| ())
}

/// A schema normal form ([`reconcile_core::model::schema::Norm::With`]) for
/// duration fields: "1h", "60m" and "3600s" compare equal. A value that is no
/// duration is left as written, for `validate` to refuse.
pub fn duration_norm(
    v: &reconcile_core::model::Value,
    _: &indexmap::IndexMap<String, reconcile_core::model::Value>,
) -> reconcile_core::model::Value {
    match v.as_str().map(parse_duration) {
        Some(Ok(d)) => reconcile_core::model::Value::str(fmt_duration(d)),
        _ => v.clone(),
    }
}

/// Writes a duration the way it is declared ("40m", "1h30m", "90s").
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("40m").unwrap(), Duration::from_secs(2400));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        for bad in [
            "",
            "40",
            "m",
            "4x",
            "-1m",
            "0m",
            "1.5h",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_duration("40").unwrap_err().contains("40m"));
        assert_eq!(fmt_duration(Duration::from_secs(2400)), "40m");
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::from_millis(20)), "0s");
    }
}
