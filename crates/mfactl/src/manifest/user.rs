//! What may name a user: an object id (a GUID) or a plausible userPrincipalName.
//!
//! The user goes into Graph URLs (`/beta/users/{user}/authentication/...`), so anything else is
//! refused before any request: `.` and `..` would be collapsed as dot segments by URL parsers
//! (a PATCH to `/beta/authentication/requirements`), and control, bidi and invisible
//! characters would be printed in the plan, where they could forge or disguise lines.
//!
//! The checks are about what cannot be a user, not a re-implementation of Entra's rules for
//! creating one: Entra's documented character set for cloud-created UPNs (A–Z a–z 0–9
//! `' . - _ ! # ^ ~`) leaves out `$`, yet `$o'neil@contoso.com` exists (graph-api.md §10), and
//! synchronised accounts predate those rules. The local part is therefore only checked for
//! what makes it impossible; the URL encoder makes any remaining character safe in the path.
//! This module must not touch the network.

use std::fmt;

use super::problem::{is_hidden_or_control, quoted};

/// Entra's limits on a userPrincipalName (learn.microsoft.com, "Password policies and account
/// restrictions in Microsoft Entra ID", username policies), counted in characters.
const MAX_TOTAL: usize = 113;
const MAX_BEFORE_AT: usize = 64;
const MAX_AFTER_AT: usize = 48;

/// The marker Entra puts at the end of a B2B guest's local part
/// (`adele_fabrikam.com#EXT#@contoso.onmicrosoft.com`).
const GUEST_MARKER: &str = "#EXT#";

/// Why a value cannot name a user; displays as the whole message, naming the value (escaped)
/// and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidUser {
    value: String,
    reason: String,
}

impl fmt::Display for InvalidUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user {} is not valid: {}; give the userPrincipalName (name@domain) or the object id \
             (a GUID)",
            quoted(&self.value),
            self.reason
        )
    }
}

impl std::error::Error for InvalidUser {}

/// Checks that `user` (already trimmed) is an object id or a plausible userPrincipalName.
///
/// An object id is accepted only in the form Graph prints, 8-4-4-4-12 hex digits, in either
/// case (GUIDs compare case-insensitively). Braced, `urn:uuid:` and unhyphenated forms are
/// refused with the form to write instead rather than normalised: the manifest's spelling is
/// what the plan, the journal and duplicate detection show, so the file should hold the form
/// Graph and the Entra admin center print.
pub fn check_user(user: &str) -> Result<(), InvalidUser> {
    user_problem(user).map_or(Ok(()), |reason| {
        Err(InvalidUser {
            value: user.to_string(),
            reason,
        })
    })
}

fn user_problem(user: &str) -> Option<String> {
    if let Some(c) = user.chars().find(|&c| is_hidden_or_control(c)) {
        return Some(format!(
            "it contains {}, a control, bidi or invisible character",
            quoted(&c.to_string())
        ));
    }
    if let Some(c) = user.chars().find(|c| c.is_whitespace()) {
        return Some(format!(
            "it contains whitespace ({}); a user name has none",
            quoted(&c.to_string())
        ));
    }
    if is_object_id(user) {
        return None;
    }
    if let Ok(id) = uuid::Uuid::try_parse(user) {
        return Some(format!(
            "write the object id as Graph does, {}",
            id.hyphenated()
        ));
    }
    let at_signs = user.matches('@').count();
    if at_signs == 0 {
        return Some("it is neither a GUID nor a name@domain".to_string());
    }
    if at_signs > 1 {
        return Some(format!(
            "it has {at_signs} @ signs; a userPrincipalName has exactly one"
        ));
    }
    let (local, domain) = user.split_once('@').expect("one @");
    if local.is_empty() {
        return Some("nothing comes before the @".to_string());
    }
    if local.ends_with('.') {
        return Some("the name before the @ ends with a dot".to_string());
    }
    if let Some(problem) = domain_problem(domain) {
        return Some(format!("the domain {} {problem}", quoted(domain)));
    }
    length_problem(local, domain)
}

/// The canonical GUID form: `8-4-4-4-12` hex digits, any case.
fn is_object_id(text: &str) -> bool {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut groups = text.split('-');
    GROUPS.iter().all(|&length| {
        groups.next().is_some_and(|group| {
            group.len() == length && group.bytes().all(|b| b.is_ascii_hexdigit())
        })
    }) && groups.next().is_none()
}

/// What is wrong with the part after the @, if anything. Only ASCII letters, digits and
/// hyphens are accepted in labels: Entra refuses accented characters in userPrincipalNames,
/// an internationalised domain is written in its `xn--` form there, and ASCII-only keeps a
/// look-alike domain (a Cyrillic `о` in `cоntoso.com`) from passing for the real one.
fn domain_problem(domain: &str) -> Option<&'static str> {
    if domain.is_empty() {
        return Some("is empty");
    }
    if !domain.contains('.') {
        return Some("has no dot; a userPrincipalName's domain looks like contoso.com");
    }
    if domain.starts_with('.') || domain.ends_with('.') {
        return Some("starts or ends with a dot");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Some("has two dots in a row");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Some("may hold only letters a-z, digits, hyphens and dots");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("has a part that starts or ends with a hyphen");
        }
    }
    None
}

/// Entra's length limits. A guest's local part is exempt from the 64-character limit: Entra
/// builds it from the invitee's whole e-mail address (`name_theirdomain.com#EXT#`), which can
/// be longer than any name an admin would choose. The total and domain limits still apply,
/// since they hold for the attribute as Entra stores it. Refusing a real guest would block a
/// valid run, while accepting a too-long value costs only a "not found" in the plan.
fn length_problem(local: &str, domain: &str) -> Option<String> {
    let (before, after) = (local.chars().count(), domain.chars().count());
    let total = before + 1 + after;
    let guest = local.ends_with(GUEST_MARKER);
    let limits = format!(
        "Entra allows at most {MAX_TOTAL} characters in all, {MAX_BEFORE_AT} before the @ and \
         {MAX_AFTER_AT} after it"
    );
    if total > MAX_TOTAL {
        Some(format!("it has {total} characters; {limits}"))
    } else if before > MAX_BEFORE_AT && !guest {
        Some(format!("it has {before} characters before the @; {limits}"))
    } else if after > MAX_AFTER_AT {
        Some(format!("it has {after} characters after the @; {limits}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(user: &str) -> String {
        user_problem(user).unwrap_or_else(|| panic!("{user:?} was accepted"))
    }

    #[test]
    fn object_ids_in_graphs_form_and_any_case_are_users() {
        for id in [
            "071cc716-8147-4397-a5ba-b2105951cc0b",
            "071CC716-8147-4397-A5BA-B2105951CC0B",
        ] {
            assert_eq!(check_user(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn other_guid_forms_are_refused_with_the_form_to_write() {
        let canonical = "071cc716-8147-4397-a5ba-b2105951cc0b";
        for other in [
            "{071cc716-8147-4397-a5ba-b2105951cc0b}",
            "071cc71681474397a5bab2105951cc0b",
            "urn:uuid:071cc716-8147-4397-a5ba-b2105951cc0b",
        ] {
            assert_eq!(
                reason(other),
                format!("write the object id as Graph does, {canonical}"),
                "{other}"
            );
        }
        assert!(reason("071cc716-8147-4397-a5ba-b2105951cc0").contains("neither"));
        assert!(reason("071cc716-8147-4397-a5ba-b2105951cc0bb").contains("neither"));
        assert!(reason("071cc716-8147-4397-a5ba-b2105951cc0g").contains("neither"));
    }

    #[test]
    fn plausible_user_principal_names_are_users() {
        for upn in [
            "megan@contoso.com",
            "Megan.Bowen@Contoso.COM",
            "adele_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "$o'neil@contoso.com",
            "a@x.io",
            "first.last-2@mail.sub-domain.example.co.uk",
            "user@xn--mnchen-3ya.de",
            ".leading@contoso.com",
        ] {
            assert_eq!(check_user(upn), Ok(()), "{upn}");
        }
    }

    #[test]
    fn dot_segments_and_names_without_a_domain_are_refused() {
        for value in [
            ".",
            "..",
            "megan",
            "megan@",
            "@contoso.com",
            "a@b@contoso.com",
        ] {
            assert!(check_user(value).is_err(), "{value}");
        }
        assert_eq!(reason(".."), "it is neither a GUID nor a name@domain");
        assert_eq!(reason("@contoso.com"), "nothing comes before the @");
        assert_eq!(
            reason("a@b@contoso.com"),
            "it has 2 @ signs; a userPrincipalName has exactly one"
        );
        assert_eq!(
            reason("megan.@contoso.com"),
            "the name before the @ ends with a dot"
        );
    }

    #[test]
    fn domains_must_look_like_dns_names() {
        let cases = [
            ("a@x", "has no dot"),
            ("a@", "is empty"),
            ("a@.contoso.com", "starts or ends with a dot"),
            ("a@contoso.com.", "starts or ends with a dot"),
            ("a@contoso..com", "two dots in a row"),
            ("a@-contoso.com", "starts or ends with a hyphen"),
            ("a@contoso-.com", "starts or ends with a hyphen"),
            ("a@contoso_x.com", "only letters a-z"),
            ("a@contoso.com/../x", "only letters a-z"),
            ("a@münchen.de", "only letters a-z"),
            ("a@c\u{43e}ntoso.com", "only letters a-z"),
        ];
        for (value, expected) in cases {
            assert!(
                reason(value).contains(expected),
                "{value}: {}",
                reason(value)
            );
        }
        assert!(reason("a@x").starts_with("the domain \"x\" has no dot"));
    }

    #[test]
    fn whitespace_controls_and_invisible_characters_are_refused_and_shown_escaped() {
        let cases = [
            ("megan @contoso.com", "whitespace (\" \")"),
            ("megan\u{a0}@contoso.com", "whitespace (\"\\u{a0}\")"),
            ("megan@contoso.com\nPlan: 0 users to change", "\"\\n\""),
            ("\u{1b}[2Jmegan@contoso.com", "\"\\u{1b}\""),
            ("megan\u{202e}moc.osotnoc@x.com", "\"\\u{202e}\""),
            ("megan\u{2066}@contoso.com", "\"\\u{2066}\""),
            ("megan\u{200b}@contoso.com", "\"\\u{200b}\""),
            ("megan\u{feff}@contoso.com", "\"\\u{feff}\""),
            ("megan\u{7f}@contoso.com", "\"\\u{7f}\""),
            ("megan\u{85}@contoso.com", "\"\\u{85}\""),
            ("megan\u{e0041}@contoso.com", "\"\\u{e0041}\""),
            ("megan\u{3164}@contoso.com", "\"\\u{3164}\""),
        ];
        for (value, shown) in cases {
            let message = check_user(value).unwrap_err().to_string();
            assert!(message.contains(shown), "{value:?}: {message}");
            assert!(
                !message
                    .chars()
                    .any(|c| c.is_control() || is_hidden_or_control(c)),
                "{message:?}"
            );
        }
    }

    #[test]
    fn the_message_names_the_value_and_the_fix() {
        assert_eq!(
            check_user("..").unwrap_err().to_string(),
            "user \"..\" is not valid: it is neither a GUID nor a name@domain; give the \
             userPrincipalName (name@domain) or the object id (a GUID)"
        );
    }

    #[test]
    fn entra_length_limits_apply_with_guests_exempt_from_the_local_limit() {
        let domain = "contoso.com";
        let ok_local = "a".repeat(64);
        assert_eq!(check_user(&format!("{ok_local}@{domain}")), Ok(()));
        let long_local = "a".repeat(65);
        assert_eq!(
            reason(&format!("{long_local}@{domain}")),
            "it has 65 characters before the @; Entra allows at most 113 characters in all, \
             64 before the @ and 48 after it"
        );
        let long_domain = format!("{}.com", "d".repeat(45));
        assert_eq!(long_domain.len(), 49);
        assert!(reason(&format!("a@{long_domain}")).starts_with("it has 49 characters after"));
        let max_domain = format!("{}.com", "d".repeat(44));
        assert_eq!(check_user(&format!("{ok_local}@{max_domain}")), Ok(()));

        // A guest's local part may pass 64, within the total.
        let guest_local = format!("{}_fabrikam.com#EXT#", "g".repeat(60));
        let guest = format!("{guest_local}@contoso.onmicrosoft.com");
        assert!(guest_local.len() > 64 && guest.len() <= 113);
        assert_eq!(check_user(&guest), Ok(()));
        let long_guest = format!(
            "{}_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "g".repeat(80)
        );
        assert!(
            reason(&long_guest).starts_with(&format!("it has {} characters;", long_guest.len()))
        );
    }
}
