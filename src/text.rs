//! Text from outside (Graph's answers, headers, the environment) made safe to show.
//!
//! Anything Graph returns — an error message, a code, a `Location` header — may hold control
//! characters, ANSI escape sequences or bidi overrides, and mfactl prints it on an admin's
//! terminal, into logs and into reports. A message with `\n` could forge a `Plan:` line; an
//! `ESC[2J` could clear the screen; a U+202E could make `moc.osotnoc` read as `contoso.com`.
//! [`printable`] escapes every such character as `\u{…}` (and `\n`, `\t`, `\r` as themselves),
//! so the text stays one line and says exactly what it holds. Nothing here does I/O.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether a character must never reach a terminal as itself: C0 and C1 controls, DEL, bidi
/// embeddings, overrides, isolates and marks, zero-width characters, and the byte-order mark.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` with every [`is_unsafe`] character escaped; borrowed when there is none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`printable`], owned, and cut to at most `max` characters (with `…` when cut): for text
/// from Graph that has no business being long (an error message, a header).
pub fn printable_capped(text: &str, max: usize) -> String {
    let safe = printable(text);
    if safe.chars().count() <= max {
        return safe.into_owned();
    }
    let mut cut: String = safe.chars().take(max).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(
            printable("megan@contoso.com: HTTP 404"),
            Cow::Borrowed(_)
        ));
        assert_eq!(printable("Ünïcødé ok"), "Ünïcødé ok");
    }

    #[test]
    fn controls_escapes_and_bidi_are_escaped() {
        assert_eq!(
            printable("a\nPlan: 0 users to change"),
            "a\\nPlan: 0 users to change"
        );
        assert_eq!(printable("\u{1b}[2Jx"), "\\u{1b}[2Jx");
        assert_eq!(printable("evil\u{202e}moc"), "evil\\u{202e}moc");
        assert_eq!(printable("\u{7f}\u{85}\u{2066}"), "\\u{7f}\\u{85}\\u{2066}");
        assert_eq!(printable("zero\u{200b}width"), "zero\\u{200b}width");
    }

    #[test]
    fn capped_text_says_it_was_cut() {
        assert_eq!(printable_capped("abcdef", 3), "abc…");
        assert_eq!(printable_capped("abc", 3), "abc");
    }
}
