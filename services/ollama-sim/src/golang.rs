//! Go standard-library behaviour that real Ollama's answers depend on: `time.ParseDuration`
//! and its error texts, and the two ways Go quotes a string (`time`'s and `%q`).

/// Nanoseconds in each unit `time.ParseDuration` knows (`time/format.go` `unitMap`).
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

const LIMIT: u64 = 1 << 63;

/// Go's `time.ParseDuration`, step for step, so the same inputs fail with the same text:
/// `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or a bare `0`. Returns signed nanoseconds.
pub fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", time_quote(orig));
    let mut s = orig.as_bytes();
    let mut negative = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        negative = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (whole, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        let (mut frac, mut scale, mut post) = (0, 1.0, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (f, sc, rest) = leading_fraction(s);
            (frac, scale, s) = (f, sc, rest);
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s.iter().position(|&c| c == b'.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", time_quote(orig)));
        }
        // The unit ends at an ASCII byte or the end, so it is whole UTF-8.
        let unit = String::from_utf8_lossy(&s[..unit_len]).into_owned();
        s = &s[unit_len..];
        let Some(per) = unit_nanos(&unit) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                time_quote(&unit),
                time_quote(orig)
            ));
        };
        if whole > LIMIT / per {
            return Err(invalid());
        }
        let mut v = whole * per;
        if frac > 0 {
            // Go's own arithmetic (float64 for the fraction), so rounding matches.
            v += (frac as f64 * (per as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        // total <= 2^63 here, so the negation fits (2^63 itself is i64::MIN).
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// `time.leadingInt`: the digits at the front, failing on overflow past 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// `time.leadingFraction`: digits after the point and their scale, ignoring digits that
/// would overflow.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let (mut x, mut scale, mut overflow) = (0u64, 1.0f64, false);
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        let digit = u64::from(s[i] - b'0');
        i += 1;
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + digit;
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

/// The `time` package's `quote`: double quotes, `"` and `\` escaped, and every byte of a
/// non-ASCII or control character written as `\xNN`.
pub fn time_quote(s: &str) -> String {
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

/// `strconv.Quote` (what `%q` prints) for the characters names and keys hold: printable
/// Unicode as is, the usual backslash escapes, other control characters as `\xNN`/`\uNNNN`.
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
            c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_accepts_what_go_accepts() {
        assert_eq!(parse_duration("5m"), Ok(300_000_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_duration("-1m"), Ok(-60_000_000_000));
        assert_eq!(parse_duration("2\u{b5}s"), Ok(2_000));
        for zero in ["0", "+0", "-0", "0s"] {
            assert_eq!(parse_duration(zero), Ok(0), "{zero}");
        }
    }

    #[test]
    fn parse_duration_fails_with_gos_texts() {
        assert_eq!(parse_duration("1.5").unwrap_err(), r#"time: missing unit in duration "1.5""#);
        assert_eq!(parse_duration("300").unwrap_err(), r#"time: missing unit in duration "300""#);
        assert_eq!(parse_duration("-1").unwrap_err(), r#"time: missing unit in duration "-1""#);
        assert_eq!(parse_duration("").unwrap_err(), r#"time: invalid duration """#);
        assert_eq!(parse_duration("m").unwrap_err(), r#"time: invalid duration "m""#);
        assert_eq!(parse_duration(".s").unwrap_err(), r#"time: invalid duration ".s""#);
        assert_eq!(parse_duration("5d").unwrap_err(), r#"time: unknown unit "d" in duration "5d""#);
        assert_eq!(parse_duration("3000000h").unwrap_err(), r#"time: invalid duration "3000000h""#);
        assert_eq!(
            parse_duration("5 m").unwrap_err(),
            r#"time: unknown unit " m" in duration "5 m""#
        );
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(time_quote("a\"é"), r#""a\"\xc3\xa9""#);
        assert_eq!(quote("m\"x\né"), r#""m\"x\né""#);
    }
}
