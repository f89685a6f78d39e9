//! `GET /beta/reports/authenticationMethods/userRegistrationDetails`: Microsoft's registration
//! report, one row per user with the methods registered and both sign-in preference values, the
//! way a client reads a whole tenant's registrations without one `/methods` read per user.
//!
//! It exists to render the report's rows from [`super::state::TenantState`]'s users and to read
//! the report's query options; it must not hold Graph's data rules, nor meter (the reports
//! limit, 5 requests per 10 s per app and tenant, is applied by [`super::routes`] through
//! [`super::throttle::Throttle::admit_report_read`]). What is documented (Microsoft's
//! `userRegistrationDetails` resource and its List page, beta) and served as documented:
//! - disabled users are left out ("This method doesn't work for disabled users");
//! - `userType` in lower case (`member`, `guest`: `signInUserType`), `userPreferredMethodForSecondaryAuthentication`
//!   in `userDefaultAuthenticationMethod`'s values (`none` when the user has no preference),
//!   `defaultMfaMethod` in `defaultMfaMethodType`'s, `methodsRegistered` in the names of
//!   `usageAuthMethod` ([`MethodKind::report_name`]), `lastUpdatedDateTime`;
//! - `$filter` on `userPrincipalName` and `userDisplayName` (`eq`, `startswith`, without regard
//!   to case), `eq` on `isMfaCapable`, `isMfaRegistered`, `isPasswordlessCapable`,
//!   `isSsprCapable`, `isSsprEnabled`, `isSsprRegistered` and
//!   `isSystemPreferredAuthenticationMethodEnabled`, and `methodsRegistered/any(x:x eq '...')`
//!   and `systemPreferredAuthenticationMethods/any(...)`, joined with `and`; anything else is
//!   400 `Request_UnsupportedQuery`.
//!
//! Without a Microsoft source, and chosen here: pages of `$top` 1–999 (the List page documents
//! `$filter` alone; clients send `$top=999`), 100 without it, linked by `@odata.nextLink` with
//! the emulator's opaque `$skiptoken`; any other option is 400. The report's freshness: rows are
//! dated now and show the current state, unless the emulator runs with `--report-age`, when the
//! report is the tenant as it was at start, dated that long before ([`ReportSnapshot`]): Graph
//! refreshes the report periodically and does not document how often. What the tenant file does
//! not hold is derived: `isAdmin` is false (no roles), `isMfaCapable` equals `isMfaRegistered`
//! (every method allowed by policy), `isPasswordlessCapable` means a FIDO2 key or Windows Hello,
//! the SSPR flags are false (SSPR is not modelled), and `systemPreferredAuthenticationMethods`
//! holds the strongest second factor in Microsoft's system-preferred order (push, oath, then
//! telephony) when system-preferred MFA is on for the user.

use serde_json::{Value, json};

use super::context::{Answer, CallContext, ReportSnapshot};
use super::listing::{self, ECHO, Token, bad_request};
use super::state::{GraphError, TenantState};
use super::tenant::{Tenant, TenantUser};
use mfactl_core::model::{MethodKind, PreferredMethod};
use mfactl_core::text::printable_capped;

/// One row of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    /// The user's position in the tenant file: what a page token counts.
    position: usize,
    id: String,
    user_principal_name: String,
    display_name: String,
    guest: bool,
    methods: Vec<MethodKind>,
    preferred: Option<PreferredMethod>,
    system_preferred: bool,
}

impl Row {
    fn of(position: usize, user: &TenantUser) -> Row {
        let mut methods = user.methods.clone();
        methods.sort();
        methods.dedup();
        Row {
            position,
            id: user.id.clone(),
            user_principal_name: user.user_principal_name.clone(),
            display_name: user.display_name.clone().unwrap_or_default(),
            guest: user.user_type == super::tenant::UserType::Guest,
            methods,
            preferred: user
                .sign_in_preferences
                .user_preferred_method_for_secondary_authentication,
            system_preferred: user
                .sign_in_preferences
                .is_system_preferred_authentication_method_enabled,
        }
    }

    fn has(&self, kinds: &[MethodKind]) -> bool {
        self.methods.iter().any(|m| kinds.contains(m))
    }

    fn is_mfa_registered(&self) -> bool {
        MethodKind::any_for_mfa(&self.methods)
    }

    fn methods_registered(&self) -> Vec<&'static str> {
        self.methods
            .iter()
            .filter_map(|m| m.report_name())
            .collect()
    }

    /// The strongest second factor in Microsoft's system-preferred order, in the report's
    /// vocabulary, when system-preferred MFA is on (none otherwise).
    fn system_preferred_methods(&self) -> Vec<&'static str> {
        const ORDER: [PreferredMethod; 6] = [
            PreferredMethod::Push,
            PreferredMethod::Oath,
            PreferredMethod::Sms,
            PreferredMethod::VoiceMobile,
            PreferredMethod::VoiceAlternateMobile,
            PreferredMethod::VoiceOffice,
        ];
        if !self.system_preferred {
            return Vec::new();
        }
        ORDER
            .iter()
            .find(|p| self.methods.iter().any(|m| p.is_enabled_by(*m)))
            .map(|p| vec![p.as_str()])
            .unwrap_or_default()
    }

    /// `defaultMfaMethod` (`defaultMfaMethodType`) for the preferred method.
    fn default_mfa_method(&self) -> &'static str {
        match self.preferred {
            None => "none",
            Some(PreferredMethod::Push) => "microsoftAuthenticatorPush",
            Some(PreferredMethod::Oath) => "softwareOneTimePasscode",
            Some(PreferredMethod::Sms | PreferredMethod::VoiceMobile) => "mobilePhone",
            Some(PreferredMethod::VoiceAlternateMobile) => "alternateMobilePhone",
            Some(PreferredMethod::VoiceOffice) => "officePhone",
        }
    }

    fn flag(&self, name: Flag) -> bool {
        match name {
            Flag::MfaCapable | Flag::MfaRegistered => self.is_mfa_registered(),
            Flag::PasswordlessCapable => {
                self.has(&[MethodKind::Fido2, MethodKind::WindowsHelloForBusiness])
            }
            Flag::SsprCapable | Flag::SsprEnabled | Flag::SsprRegistered => false,
            Flag::SystemPreferred => self.system_preferred,
        }
    }

    /// The row as Graph answers it, in the resource page's property order.
    fn render(&self, updated: &str) -> Value {
        json!({
            "id": self.id,
            "userPrincipalName": self.user_principal_name,
            "userDisplayName": self.display_name,
            "userType": if self.guest { "guest" } else { "member" },
            "isAdmin": false,
            "isSsprRegistered": self.flag(Flag::SsprRegistered),
            "isSsprEnabled": self.flag(Flag::SsprEnabled),
            "isSsprCapable": self.flag(Flag::SsprCapable),
            "isMfaRegistered": self.flag(Flag::MfaRegistered),
            "isMfaCapable": self.flag(Flag::MfaCapable),
            "isPasswordlessCapable": self.flag(Flag::PasswordlessCapable),
            "lastUpdatedDateTime": updated,
            "methodsRegistered": self.methods_registered(),
            "defaultMfaMethod": self.default_mfa_method(),
            "isSystemPreferredAuthenticationMethodEnabled": self.system_preferred,
            "systemPreferredAuthenticationMethods": self.system_preferred_methods(),
            "userPreferredMethodForSecondaryAuthentication":
                self.preferred.map_or("none", PreferredMethod::as_str),
        })
    }
}

/// The rows of every enabled user, in the tenant file's order.
fn enabled_rows(tenant: &Tenant) -> impl Iterator<Item = Row> + '_ {
    tenant
        .users
        .iter()
        .enumerate()
        .filter(|(_, user)| user.account_enabled)
        .map(|(position, user)| Row::of(position, user))
}

/// A boolean the report filters on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flag {
    MfaCapable,
    MfaRegistered,
    PasswordlessCapable,
    SsprCapable,
    SsprEnabled,
    SsprRegistered,
    SystemPreferred,
}

const FLAGS: [(&str, Flag); 7] = [
    ("isMfaCapable", Flag::MfaCapable),
    ("isMfaRegistered", Flag::MfaRegistered),
    ("isPasswordlessCapable", Flag::PasswordlessCapable),
    ("isSsprCapable", Flag::SsprCapable),
    ("isSsprEnabled", Flag::SsprEnabled),
    ("isSsprRegistered", Flag::SsprRegistered),
    (
        "isSystemPreferredAuthenticationMethodEnabled",
        Flag::SystemPreferred,
    ),
];

/// One `$filter` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Clause {
    /// `userPrincipalName` (`upn`) or `userDisplayName`, `eq` or `startswith` (`prefix`).
    Text {
        upn: bool,
        prefix: bool,
        value: String,
    },
    Flag(Flag, bool),
    /// `methodsRegistered/any(x:x eq '...')` (`methods`) or `systemPreferredAuthenticationMethods`.
    Any {
        methods: bool,
        value: String,
    },
}

impl Clause {
    fn matches(&self, row: &Row) -> bool {
        match self {
            Clause::Text { upn, prefix, value } => {
                let text = if *upn {
                    &row.user_principal_name
                } else {
                    &row.display_name
                };
                let (text, value) = (text.to_lowercase(), value.to_lowercase());
                if *prefix {
                    text.starts_with(&value)
                } else {
                    text == value
                }
            }
            Clause::Flag(flag, value) => row.flag(*flag) == *value,
            Clause::Any { methods, value } => {
                let values = if *methods {
                    row.methods_registered()
                } else {
                    row.system_preferred_methods()
                };
                values.iter().any(|v| v.eq_ignore_ascii_case(value))
            }
        }
    }
}

fn unsupported(what: &str) -> Answer {
    Answer::error(
        400,
        "Request_UnsupportedQuery",
        format!(
            "Unsupported or invalid query filter clause specified ({}): the report filters \
             userPrincipalName and userDisplayName (eq, startswith), the is* flags (eq), and \
             methodsRegistered or systemPreferredAuthenticationMethods with any(x:x eq '...'), \
             joined with 'and'.",
            printable_capped(what, ECHO)
        ),
    )
}

/// One clause at the start of `tokens`, and what follows it.
fn clause(tokens: &[Token]) -> Result<(Clause, &[Token]), Answer> {
    use Token::{Close, Comma, Open, Text, Word};
    let text_property = |name: &str| {
        if name.eq_ignore_ascii_case("userPrincipalName") {
            Some(true)
        } else if name.eq_ignore_ascii_case("userDisplayName") {
            Some(false)
        } else {
            None
        }
    };
    match tokens {
        [Word(f), Open, Word(p), Comma, Text(t), Close, rest @ ..]
            if f.eq_ignore_ascii_case("startswith") =>
        {
            let upn = text_property(p).ok_or_else(|| unsupported(&format!("startswith on {p}")))?;
            let clause = Clause::Text {
                upn,
                prefix: true,
                value: t.clone(),
            };
            Ok((clause, rest))
        }
        [
            Word(lambda),
            Open,
            Word(var),
            Word(op),
            Text(t),
            Close,
            rest @ ..,
        ] if lambda.to_ascii_lowercase().ends_with("/any") => {
            let property = &lambda[..lambda.len() - "/any".len()];
            let methods = if property.eq_ignore_ascii_case("methodsRegistered") {
                true
            } else if property.eq_ignore_ascii_case("systemPreferredAuthenticationMethods") {
                false
            } else {
                return Err(unsupported(lambda));
            };
            let bound = var
                .split_once(':')
                .is_some_and(|(a, b)| !a.is_empty() && a == b);
            if !bound || op != "eq" {
                return Err(unsupported(&format!("{lambda}({var} {op} ...)")));
            }
            Ok((
                Clause::Any {
                    methods,
                    value: t.clone(),
                },
                rest,
            ))
        }
        [Word(p), Word(op), value, rest @ ..] => {
            if op != "eq" {
                return Err(unsupported(&format!("{p} {op}")));
            }
            let clause = match (value, text_property(p)) {
                (Text(t), Some(upn)) => Clause::Text {
                    upn,
                    prefix: false,
                    value: t.clone(),
                },
                (Word(b), None) => {
                    let flag = FLAGS
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(p))
                        .map(|(_, flag)| *flag)
                        .ok_or_else(|| unsupported(p))?;
                    match b.to_ascii_lowercase().as_str() {
                        "true" => Clause::Flag(flag, true),
                        "false" => Clause::Flag(flag, false),
                        _ => {
                            return Err(bad_request(format!(
                                "Invalid filter clause: {} takes true or false.",
                                printable_capped(p, ECHO)
                            )));
                        }
                    }
                }
                _ => return Err(unsupported(p)),
            };
            Ok((clause, rest))
        }
        [Word(w), ..] => Err(unsupported(w)),
        _ => Err(bad_request("Invalid filter clause.".to_owned())),
    }
}

/// `clause and clause ...`.
fn parse_filter(filter: &str) -> Result<Vec<Clause>, Answer> {
    let tokens = listing::tokens(filter)?;
    let mut clauses = Vec::new();
    let mut rest = tokens.as_slice();
    loop {
        let (parsed, after) = clause(rest)?;
        clauses.push(parsed);
        match after {
            [] => return Ok(clauses),
            [Token::Word(and), more @ ..]
                if and.eq_ignore_ascii_case("and") && !more.is_empty() =>
            {
                rest = more
            }
            [Token::Word(or), ..] if or.eq_ignore_ascii_case("or") => {
                return Err(unsupported("or"));
            }
            _ => {
                return Err(bad_request(format!(
                    "Invalid filter clause: {}.",
                    printable_capped(&format!("'{filter}'"), ECHO)
                )));
            }
        }
    }
}

/// `GET` of the report with the request's query string (without the `?`): from `snapshot`
/// when the emulator serves an old report, else from the current state, dated now. Paging is
/// the emulator's listings' ([`listing::parse_window`], [`listing::values_page`]).
pub(super) fn list(
    state: &TenantState,
    snapshot: Option<&ReportSnapshot>,
    query: Option<&str>,
    context: &CallContext,
) -> Result<Answer, GraphError> {
    let window = match listing::parse_window(
        query.unwrap_or_default(),
        listing::DEFAULT_TOP,
        &["filter"],
        "registration report",
    ) {
        Ok(window) => window,
        Err(answer) => return Ok(answer),
    };
    let filter = match window.options.first() {
        Some((_, filter)) => match parse_filter(filter) {
            Ok(filter) => filter,
            Err(answer) => return Ok(answer),
        },
        None => Vec::new(),
    };
    let matching =
        |row: &Row| row.position >= window.offset && filter.iter().all(|c| c.matches(row));
    let (tenant, updated) = match snapshot {
        Some(snapshot) => (&snapshot.tenant, snapshot.updated.clone()),
        None => (state.tenant(), jiff::Timestamp::now().to_string()),
    };
    let rows = enabled_rows(tenant).filter(|row| matching(row));
    Ok(listing::values_page(
        rows.map(|row| (row.position, row.render(&updated))),
        window.top,
        &window.carried,
        "reports/authenticationMethods/userRegistrationDetails",
        context,
    ))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use std::time::Duration;

    use super::*;
    use crate::tenant::UserType;

    fn context() -> CallContext {
        CallContext {
            link: "http://127.0.0.1:1/beta/reports/authenticationMethods/userRegistrationDetails"
                .into(),
            eventual: false,
            refuse_mfa_state_select: false,
        }
    }

    /// Every row of the report, page by page, for `query`.
    fn all_rows(state: &TenantState, snapshot: Option<&ReportSnapshot>, query: &str) -> Vec<Value> {
        let mut rows = Vec::new();
        let mut query = query.to_owned();
        loop {
            let answer = list(state, snapshot, Some(&query), &context()).unwrap();
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
            let body = answer.body.unwrap();
            rows.extend(body["value"].as_array().unwrap().iter().cloned());
            match body["@odata.nextLink"].as_str() {
                Some(link) => query = link.split_once('?').unwrap().1.to_owned(),
                None => return rows,
            }
        }
    }

    #[test]
    fn pages_hold_every_enabled_user_once_in_the_reports_vocabulary() {
        let mut tenant = Tenant::generate(300, 11);
        tenant.users[0].account_enabled = false;
        tenant.users[1].user_type = UserType::Guest;
        tenant.users[1].methods =
            vec![MethodKind::MicrosoftAuthenticator, MethodKind::SoftwareOath];
        tenant.users[1]
            .sign_in_preferences
            .user_preferred_method_for_secondary_authentication = None;
        let state = TenantState::new(tenant.clone());
        let rows = all_rows(&state, None, "$top=7");
        let enabled: Vec<&str> = tenant
            .users
            .iter()
            .filter(|u| u.account_enabled)
            .map(|u| u.id.as_str())
            .collect();
        let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, enabled);
        let row = &rows[0];
        assert_eq!(row["id"], tenant.users[1].id);
        assert_eq!(row["userType"], "guest");
        assert_eq!(row["userPreferredMethodForSecondaryAuthentication"], "none");
        assert_eq!(
            row["methodsRegistered"],
            json!(["microsoftAuthenticatorPush", "softwareOneTimePasscode"])
        );
        assert!(row["lastUpdatedDateTime"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn filters_are_the_documented_ones() {
        let mut tenant = Tenant::generate(40, 3);
        tenant.users[2].methods = vec![MethodKind::Email, MethodKind::MobilePhone];
        let state = TenantState::new(tenant.clone());
        let upn = tenant.users[2].user_principal_name.to_uppercase();
        let rows = all_rows(
            &state,
            None,
            &format!("$filter=userPrincipalName eq '{upn}'"),
        );
        assert_eq!(rows.len(), 1);
        let rows = all_rows(
            &state,
            None,
            "$filter=methodsRegistered/any(x:x eq 'email') and isMfaRegistered eq true",
        );
        assert!(rows.iter().any(|r| r["id"] == tenant.users[2].id.as_str()));
        assert!(rows.iter().all(|r| {
            r["methodsRegistered"]
                .as_array()
                .unwrap()
                .contains(&json!("email"))
        }));
        for bad in [
            "$filter=userType eq 'guest'",
            "$filter=isMfaRegistered eq true or isAdmin eq true",
            "$filter=methodsRegistered/any(x:y eq 'email')",
            "$select=id",
            "$top=0",
        ] {
            let answer = list(&state, None, Some(bad), &context()).unwrap();
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn an_old_report_keeps_the_state_it_was_taken_in() {
        let tenant = Tenant::generate(5, 9);
        let snapshot = ReportSnapshot::take(&tenant, Duration::from_secs(3 * 24 * 3600));
        let mut changed = tenant.clone();
        changed.users[0]
            .sign_in_preferences
            .is_system_preferred_authentication_method_enabled ^= true;
        let state = TenantState::new(changed);
        let rows = all_rows(&state, Some(&snapshot), "");
        assert_eq!(
            rows[0]["isSystemPreferredAuthenticationMethodEnabled"],
            tenant.users[0]
                .sign_in_preferences
                .is_system_preferred_authentication_method_enabled
        );
        let updated: jiff::Timestamp = rows[0]["lastUpdatedDateTime"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let age = jiff::Timestamp::now().duration_since(updated);
        assert!(age.as_secs() >= 3 * 24 * 3600 - 5, "{age:?}");
    }
}
