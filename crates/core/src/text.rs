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

/// Whether `c` can move the cursor, end a line, reorder or hide text on a terminal: C0 and C1
/// controls and DEL; Unicode format characters (general category Cf: bidi embeddings,
/// overrides, isolates and marks, zero-width space and joiners, the BOM, invisible operators,
/// tag characters); line and paragraph separators; and the letters that render as blanks
/// (Hangul fillers, the combining grapheme joiner). None of them belongs in a user name, and
/// none is printed unescaped in a message.
pub fn is_hidden_or_control(c: char) -> bool {
    /// Unicode 15.1 general category Cf, plus the blank-rendering letters.
    const HIDDEN: &[(char, char)] = &[
        ('\u{00AD}', '\u{00AD}'),
        ('\u{034F}', '\u{034F}'),
        ('\u{0600}', '\u{0605}'),
        ('\u{061C}', '\u{061C}'),
        ('\u{06DD}', '\u{06DD}'),
        ('\u{070F}', '\u{070F}'),
        ('\u{0890}', '\u{0891}'),
        ('\u{08E2}', '\u{08E2}'),
        ('\u{115F}', '\u{1160}'),
        ('\u{180E}', '\u{180E}'),
        ('\u{200B}', '\u{200F}'),
        ('\u{2028}', '\u{202E}'),
        ('\u{2060}', '\u{2064}'),
        ('\u{2066}', '\u{206F}'),
        ('\u{3164}', '\u{3164}'),
        ('\u{FEFF}', '\u{FEFF}'),
        ('\u{FFA0}', '\u{FFA0}'),
        ('\u{FFF9}', '\u{FFFB}'),
        ('\u{110BD}', '\u{110BD}'),
        ('\u{110CD}', '\u{110CD}'),
        ('\u{13430}', '\u{1343F}'),
        ('\u{1BCA0}', '\u{1BCA3}'),
        ('\u{1D173}', '\u{1D17A}'),
        ('\u{E0001}', '\u{E0001}'),
        ('\u{E0020}', '\u{E007F}'),
    ];
    c.is_control()
        || HIDDEN
            .iter()
            .any(|&(first, last)| (first..=last).contains(&c))
}

/// `text` with every [`is_hidden_or_control`] character escaped; borrowed when there is none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden_or_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_hidden_or_control(c) => {
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

/// `1234567` as `1,234,567`: counts people read at a glance.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
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
