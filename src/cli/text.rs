//! Payload text for human-readable output: control characters escaped, so a payload cannot
//! start a new line of its own (and forge a `delivered …` line a script would believe).

use std::fmt::Write as _;

/// `bytes` as text (invalid UTF-8 replaced by U+FFFD) with `\` written `\\` and every control
/// character escaped (`\n`, `\r`, `\t`, else `\u{..}`), so the result holds no line break.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Line and paragraph separators break lines in some readers too.
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape(b"plain text"), "plain text");
        assert_eq!(
            escape(b"x\ndelivered 00 forged\r\t\\\x1b[2J\x00"),
            "x\\ndelivered 00 forged\\r\\t\\\\\\u{1b}[2J\\u{0}"
        );
        assert_eq!(escape("a\u{2028}b\u{85}".as_bytes()), "a\\u{2028}b\\u{85}");
        assert_eq!(escape(&[0xff, b'a']), "\u{fffd}a");
        assert!(!escape(b"\n\r\x0b\x0c").contains(['\n', '\r', '\x0b', '\x0c']));
    }
}
