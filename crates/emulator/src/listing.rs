//! `GET /beta/users`: the tenant's users, a page at a time, the way `mfactl export` and any
//! whole-tenant run read them; and the paging, `$select` and `$count` machinery that the group
//! member lists ([`super::members`]) share.
//!
//! It exists to read the OData query options of these collections and page through
//! [`super::state::TenantState`]'s users in file order; it must not hold Graph's data rules, nor
//! meter (the pipeline in [`super::routes`] has; [`resource_units`] only says what a page costs).
//! Only what Graph documents and mfactl can use is served:
//! - `$top` 1 to 999 (Graph's limit for directory objects), 100 without it. A page that is not
//!   the last carries `@odata.nextLink`: the same request with an opaque `$skiptoken`, absolute
//!   on the host the request reached (as Graph's links name Graph's host).
//! - `$select` of `id`, `userPrincipalName`, `displayName`, `userType`, `accountEnabled` (the
//!   properties the tenant file holds); another property is 400 `BadRequest`, as Graph answers
//!   a property it does not know. Without it every one of them is answered. On `/users` only,
//!   `perUserMfaState` may be selected too: it is not in Microsoft's published schema for
//!   `user`, but Graph answers it to that query (CIPP lists users so since 2025-03); it is never
//!   answered unselected (Graph's default set is documented and lacks it), and
//!   `--refuse per-user-mfa-state-select` makes it the unknown property a Graph without it
//!   would refuse.
//! - `$filter` (users only): `userPrincipalName eq '...'`, `startswith(userPrincipalName,'...')`,
//!   `userType eq '...'`, `accountEnabled eq true|false`, joined with `and`. Strings compare
//!   without regard to case, as Entra compares directory strings. Any other property, operator
//!   or function is 400 `Request_UnsupportedQuery`; a malformed clause 400 `BadRequest`.
//! - `$count=true` adds `@odata.count` (every match, not the page), and only with the header
//!   `ConsistencyLevel: eventual`: Graph treats `$count` on directory objects as an advanced
//!   query and refuses it without that header.
//!
//! Options are read with or without their `$` and in any case; an option the emulator does not
//! serve (`$orderby`, `$search`, `$expand`, ...) is 400 rather than silently ignored.

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::context::{Answer, CallContext};
use super::state::TenantState;
use super::tenant::{Group, TenantUser};
use mfactl_core::text::printable_capped;

/// The largest `$top` Graph takes for directory objects.
pub(super) const MAX_TOP: usize = 999;
/// The page size without `$top` (Graph's default for users).
pub(super) const DEFAULT_TOP: usize = 100;
/// The user properties the emulator holds, in Graph's spelling and answer order.
pub(super) const PROPERTIES: [&str; 5] = [
    "id",
    "userPrincipalName",
    "displayName",
    "userType",
    "accountEnabled",
];
/// The undocumented property `/users` answers only when selected (see the module doc).
const PER_USER_MFA_STATE: &str = "perUserMfaState";
/// How much of a sent value a message repeats.
pub(super) const ECHO: usize = 80;
/// What a page token says before its offset; anything else is not a token the emulator made.
const TOKEN_PREFIX: &str = "mfactl-emulator-page:";

/// The RU a page of a collection costs before the query's discounts (Microsoft's "base request
/// costs" for the identity and access service: `GET users` 2, `GET groups/{id}/members` 3,
/// `GET groups/{id}/transitiveMembers` 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BaseCost {
    Users = 2,
    Members = 3,
    TransitiveMembers = 5,
}

/// What one page costs: the base cost, 1 less with `$select`, 1 less with a `$top` under 20,
/// never below 1 (the same documentation). A malformed query costs the base: it is charged
/// before it is read, as Graph meters what it is sent.
pub(super) fn resource_units(base: BaseCost, query: Option<&str>) -> u32 {
    let mut cost = base as u32;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key
            .strip_prefix('$')
            .unwrap_or(&key)
            .to_ascii_lowercase()
            .as_str()
        {
            "select" => cost = cost.saturating_sub(1),
            "top" if value.trim().parse::<usize>().is_ok_and(|top| top < 20) => {
                cost = cost.saturating_sub(1)
            }
            _ => {}
        }
    }
    cost.max(1)
}

/// One `filter` clause, checked.
#[derive(Debug, PartialEq, Eq)]
enum Clause {
    UpnEquals(String),
    UpnStartsWith(String),
    UserType(String),
    AccountEnabled(bool),
}

impl Clause {
    fn matches(&self, user: &TenantUser) -> bool {
        let upn = &user.user_principal_name;
        match self {
            Clause::UpnEquals(value) => upn.to_lowercase() == value.to_lowercase(),
            Clause::UpnStartsWith(prefix) => upn.to_lowercase().starts_with(&prefix.to_lowercase()),
            Clause::UserType(value) => user.user_type.graph_name().eq_ignore_ascii_case(value),
            Clause::AccountEnabled(value) => user.account_enabled == *value,
        }
    }
}

/// The query options of one listing request, checked.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ListQuery {
    /// `$select`: the properties to answer with, in [`PROPERTIES`] order (all without it), then
    /// `perUserMfaState` when selected.
    select: Option<Vec<&'static str>>,
    /// Every clause must hold (`and`); empty for no `$filter`.
    filter: Vec<Clause>,
    top: usize,
    /// Where the page starts, from `$skiptoken`.
    offset: usize,
    count: bool,
    /// The options other than `$skiptoken`, encoded again for the next page's link.
    carried: Vec<(String, String)>,
}

impl ListQuery {
    /// Where the page starts among the collection's objects.
    pub(super) fn offset(&self) -> usize {
        self.offset
    }
}

pub(super) fn bad_request(message: String) -> Answer {
    Answer::error(400, "BadRequest", message)
}

/// Reads a listing's query string (without the `?`); `filters` says whether this is `/users`,
/// which serves `$filter` and the selected `perUserMfaState` (unless the context refuses it).
pub(super) fn parse_query(
    text: &str,
    filters: bool,
    context: &CallContext,
) -> Result<ListQuery, Answer> {
    let mfa_state = filters && !context.refuse_mfa_state_select;
    let mut query = ListQuery {
        select: None,
        filter: Vec::new(),
        top: DEFAULT_TOP,
        offset: 0,
        count: false,
        carried: Vec::new(),
    };
    let mut seen = Vec::new();
    for (key, value) in url::form_urlencoded::parse(text.as_bytes()) {
        let option = key.strip_prefix('$').unwrap_or(&key).to_ascii_lowercase();
        let served = ["select", "top", "skiptoken", "count"].contains(&option.as_str())
            || (filters && option == "filter");
        if served {
            if seen.contains(&option) {
                return Err(bad_request(format!(
                    "Query option '${option}' is specified more than once."
                )));
            }
            seen.push(option.clone());
        }
        match option.as_str() {
            _ if !served && key.starts_with('$') => {
                return Err(bad_request(format!(
                    "Query option '{}' is not supported by the emulator's listings (they serve \
                     $select, $top, $count{}).",
                    printable_capped(&key, ECHO),
                    if filters { ", $filter" } else { "" }
                )));
            }
            // Graph ignores parameters that are not query options.
            _ if !served => continue,
            "filter" => query.filter = parse_filter(&value)?,
            "select" => query.select = Some(parse_select(&value, mfa_state)?),
            "top" => query.top = parse_top(&value)?,
            "skiptoken" => {
                query.offset = parse_token(&value)?;
                continue;
            }
            _ => query.count = parse_count(&value, context)?,
        }
        query.carried.push((key.into_owned(), value.into_owned()));
    }
    Ok(query)
}

fn parse_select(select: &str, mfa_state: bool) -> Result<Vec<&'static str>, Answer> {
    let mut wanted = Vec::new();
    let extra: &[&'static str] = if mfa_state {
        &[PER_USER_MFA_STATE]
    } else {
        &[]
    };
    for name in select.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let property = PROPERTIES
            .iter()
            .chain(extra)
            .find(|p| p.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                bad_request(format!(
                    "Could not find a property named {} on type 'microsoft.graph.user' (the \
                     emulator's users hold {}).",
                    printable_capped(&format!("'{name}'"), ECHO),
                    PROPERTIES.join(", ")
                ))
            })?;
        if !wanted.contains(property) {
            wanted.push(*property);
        }
    }
    Ok(PROPERTIES
        .iter()
        .chain(extra)
        .copied()
        .filter(|p| {
            if wanted.is_empty() {
                PROPERTIES.contains(p)
            } else {
                wanted.contains(p)
            }
        })
        .collect())
}

pub(super) fn parse_top(top: &str) -> Result<usize, Answer> {
    match top.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
        _ => Err(bad_request(format!(
            "Invalid $top {}: a whole number from 1 to {MAX_TOP} is expected.",
            printable_capped(&format!("'{top}'"), ECHO)
        ))),
    }
}

fn parse_count(count: &str, context: &CallContext) -> Result<bool, Answer> {
    let count = match count.trim() {
        c if c.eq_ignore_ascii_case("true") => true,
        c if c.eq_ignore_ascii_case("false") => false,
        other => {
            return Err(bad_request(format!(
                "Invalid $count {}: true or false is expected.",
                printable_capped(&format!("'{other}'"), ECHO)
            )));
        }
    };
    if count && !context.eventual {
        return Err(Answer::error(
            400,
            "Request_BadRequest",
            "$count is not currently supported without the header 'ConsistencyLevel: eventual' \
             (an advanced query).",
        ));
    }
    Ok(count)
}

/// The page token for `offset`; only [`parse_token`] reads it.
pub(super) fn page_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{offset}"))
}

pub(super) fn parse_token(token: &str) -> Result<usize, Answer> {
    URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(TOKEN_PREFIX)?.parse().ok())
        .ok_or_else(|| {
            Answer::error(
                400,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in \
                 your request.",
            )
        })
}

/// One token of a `$filter`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Token {
    /// A name, a keyword, `true`/`false`.
    Word(String),
    /// A string literal, its `''` already read as `'`.
    Text(String),
    Open,
    Close,
    Comma,
}

pub(super) fn tokens(filter: &str) -> Result<Vec<Token>, Answer> {
    let mut out = Vec::new();
    let mut chars = filter.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            ',' => out.push(Token::Comma),
            '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => text.push(c),
                        None => {
                            return Err(bad_request(
                                "Invalid filter clause: a string literal is not closed with a \
                                 quote."
                                    .to_owned(),
                            ));
                        }
                    }
                }
                out.push(Token::Text(text));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || matches!(next, '(' | ')' | ',' | '\'') {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

/// `clause and clause ...` → the clauses.
fn parse_filter(filter: &str) -> Result<Vec<Clause>, Answer> {
    let unsupported = |what: &str| {
        Answer::error(
            400,
            "Request_UnsupportedQuery",
            format!(
                "Unsupported or invalid query filter clause specified ({}): the emulator's \
                 /users filters userPrincipalName (eq, startswith), userType (eq) and \
                 accountEnabled (eq), joined with 'and'.",
                printable_capped(what, ECHO)
            ),
        )
    };
    let word = |token: Option<&Token>, expected: &str| matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(expected));
    let tokens = tokens(filter)?;
    let mut clauses = Vec::new();
    let mut rest = tokens.as_slice();
    loop {
        let (clause, after) = match rest {
            [
                Token::Word(f),
                Token::Open,
                Token::Word(p),
                Token::Comma,
                Token::Text(t),
                Token::Close,
                after @ ..,
            ] if f.eq_ignore_ascii_case("startswith") => {
                if !p.eq_ignore_ascii_case("userPrincipalName") {
                    return Err(unsupported(&format!("startswith on {p}")));
                }
                (Clause::UpnStartsWith(t.clone()), after)
            }
            [Token::Word(p), Token::Word(op), value, after @ ..] => {
                if op != "eq" {
                    return Err(unsupported(&format!("{p} {op}")));
                }
                let clause = match value {
                    Token::Text(t) if p.eq_ignore_ascii_case("userPrincipalName") => {
                        Clause::UpnEquals(t.clone())
                    }
                    Token::Text(t) if p.eq_ignore_ascii_case("userType") => {
                        Clause::UserType(t.clone())
                    }
                    Token::Word(b) if p.eq_ignore_ascii_case("accountEnabled") => {
                        match b.to_ascii_lowercase().as_str() {
                            "true" => Clause::AccountEnabled(true),
                            "false" => Clause::AccountEnabled(false),
                            _ => {
                                return Err(bad_request(format!(
                                    "Invalid filter clause: accountEnabled takes true or false (got {}).",
                                    printable_capped(b, ECHO)
                                )));
                            }
                        }
                    }
                    _ if ["userPrincipalName", "userType", "accountEnabled"]
                        .iter()
                        .any(|known| p.eq_ignore_ascii_case(known)) =>
                    {
                        return Err(bad_request(format!(
                            "Invalid filter clause: the value compared with {} has the wrong type.",
                            printable_capped(p, ECHO)
                        )));
                    }
                    _ => return Err(unsupported(p)),
                };
                (clause, after)
            }
            [Token::Word(w), ..] => return Err(unsupported(w)),
            _ => {
                return Err(bad_request(format!(
                    "Invalid filter clause: {}.",
                    printable_capped(&format!("'{filter}'"), ECHO)
                )));
            }
        };
        clauses.push(clause);
        match after {
            [] => return Ok(clauses),
            [and, more @ ..] if word(Some(and), "and") && !more.is_empty() => rest = more,
            [Token::Word(w), ..] if w.eq_ignore_ascii_case("or") => {
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

/// A directory object a listing answers with.
pub(super) enum Listed<'a> {
    User(&'a TenantUser),
    Group(&'a Group),
}

impl Listed<'_> {
    /// The object with the selected properties (a group has only `id` and `displayName`), and
    /// its `@odata.type` when `typed` (a list that mixes users and groups says which is which).
    fn render(&self, select: &[&str], typed: bool) -> Value {
        let mut object = Map::new();
        match self {
            Listed::User(user) => {
                if typed {
                    object.insert("@odata.type".into(), json!("#microsoft.graph.user"));
                }
                for property in select {
                    let value = match *property {
                        "id" => json!(user.id),
                        "userPrincipalName" => json!(user.user_principal_name),
                        "displayName" => json!(user.display_name),
                        "userType" => json!(user.user_type.graph_name()),
                        PER_USER_MFA_STATE => json!(user.per_user_mfa_state.as_str()),
                        _ => json!(user.account_enabled),
                    };
                    object.insert((*property).to_owned(), value);
                }
            }
            Listed::Group(group) => {
                object.insert("@odata.type".into(), json!("#microsoft.graph.group"));
                for property in select {
                    match *property {
                        "id" => object.insert("id".into(), json!(group.id)),
                        "displayName" => {
                            object.insert("displayName".into(), json!(group.display_name))
                        }
                        _ => None,
                    };
                }
            }
        }
        Value::Object(object)
    }
}

/// One page of a collection: `items` are the objects from the query's offset on (the caller
/// may stop early: only a page's worth and one more are taken), `total` every match when
/// `$count` asked for it. `context_name` is the `@odata.context` fragment (`users`,
/// `directoryObjects`).
pub(super) fn page<'a>(
    query: &ListQuery,
    items: impl Iterator<Item = (usize, Listed<'a>)>,
    total: impl FnOnce() -> usize,
    context_name: &str,
    typed: bool,
    context: &CallContext,
) -> Answer {
    let select = query.select.as_deref().unwrap_or(&PROPERTIES);
    let mut value = Vec::with_capacity(query.top.min(64));
    let mut next = None;
    for (position, item) in items {
        if value.len() == query.top {
            next = Some(position);
            break;
        }
        value.push(item.render(select, typed));
    }
    let count = query.count.then(total);
    page_body(value, next, count, &query.carried, context_name, context)
}

/// A page's answer: `@odata.context`, `@odata.count` when asked for, `@odata.nextLink` to the
/// page at `next` (the `carried` options and a `$skiptoken`, on the request's own host), and
/// the items.
fn page_body(
    value: Vec<Value>,
    next: Option<usize>,
    count: Option<usize>,
    carried: &[(String, String)],
    context_name: &str,
    context: &CallContext,
) -> Answer {
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "https://graph.microsoft.com/beta/$metadata#{context_name}"
        )),
    );
    if let Some(count) = count {
        body.insert("@odata.count".into(), json!(count));
    }
    if let Some(offset) = next {
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in carried {
            link.append_pair(key, value);
        }
        link.append_pair("$skiptoken", &page_token(offset));
        body.insert(
            "@odata.nextLink".into(),
            json!(format!("{}?{}", context.link, link.finish())),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Answer::json(StatusCode::OK, Value::Object(body))
}

/// The paging options of a collection served without `$select` or `$count` (Conditional Access
/// policies, role assignments, the registration report): `$top` and `$skiptoken`, and the
/// options in `extra` (lower-case, without `$`) handed back for the caller to read. Any other `$`
/// option is 400, as elsewhere in the emulator; every option but `$skiptoken` is carried into
/// the next page's link.
pub(super) struct Window {
    pub(super) top: usize,
    pub(super) offset: usize,
    pub(super) carried: Vec<(String, String)>,
    /// `(option, value)` for each option of `extra` the query holds.
    pub(super) options: Vec<(String, String)>,
}

/// Reads a [`Window`] from a query string (without the `?`); `top` is the page size without
/// `$top`, `what` names the collection in messages.
pub(super) fn parse_window(
    text: &str,
    top: usize,
    extra: &[&str],
    what: &str,
) -> Result<Window, Answer> {
    let mut window = Window {
        top,
        offset: 0,
        carried: Vec::new(),
        options: Vec::new(),
    };
    let mut seen = Vec::new();
    for (key, value) in url::form_urlencoded::parse(text.as_bytes()) {
        let option = key.strip_prefix('$').unwrap_or(&key).to_ascii_lowercase();
        let served =
            ["top", "skiptoken"].contains(&option.as_str()) || extra.contains(&option.as_str());
        if !served {
            if key.starts_with('$') {
                return Err(bad_request(format!(
                    "Query option '{}' is not supported by the emulator's {what} (it serves \
                     $top{}).",
                    printable_capped(&key, ECHO),
                    extra.iter().map(|o| format!(", ${o}")).collect::<String>()
                )));
            }
            continue;
        }
        if seen.contains(&option) {
            return Err(bad_request(format!(
                "Query option '${option}' is specified more than once."
            )));
        }
        seen.push(option.clone());
        match option.as_str() {
            "top" => window.top = parse_top(&value)?,
            "skiptoken" => {
                window.offset = parse_token(&value)?;
                continue;
            }
            _ => window.options.push((option, value.clone().into_owned())),
        }
        window.carried.push((key.into_owned(), value.into_owned()));
    }
    Ok(window)
}

/// One page of a collection of ready-made objects (Conditional Access policies, role
/// assignments, the registration report's rows): `items` from the page's offset on, each with
/// its position; a page holds `top` and links the next with the `carried` options and a
/// `$skiptoken`, as [`page`] does.
pub(super) fn values_page(
    items: impl Iterator<Item = (usize, Value)>,
    top: usize,
    carried: &[(String, String)],
    context_name: &str,
    context: &CallContext,
) -> Answer {
    let mut value = Vec::new();
    let mut next = None;
    for (position, item) in items {
        if value.len() == top {
            next = Some(position);
            break;
        }
        value.push(item);
    }
    page_body(value, next, None, carried, context_name, context)
}

/// `GET /users` with the request's query string (without the `?`).
pub(super) fn users(state: &TenantState, query: Option<&str>, context: &CallContext) -> Answer {
    let query = match parse_query(query.unwrap_or_default(), true, context) {
        Ok(query) => query,
        Err(answer) => return answer,
    };
    let users = &state.tenant().users;
    let matching = |user: &&TenantUser| query.filter.iter().all(|clause| clause.matches(user));
    // The offset is a position in the tenant's users, not among the matches: a page resumes its
    // scan where the last one stopped.
    let items = users
        .iter()
        .enumerate()
        .skip(query.offset)
        .filter(|(_, user)| matching(user))
        .map(|(position, user)| (position, Listed::User(user)));
    page(
        &query,
        items,
        || users.iter().filter(matching).count(),
        "users",
        false,
        context,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tenant;
    use crate::tenant::UserType;

    fn context() -> CallContext {
        CallContext {
            link: "http://127.0.0.1:1/beta/users".into(),
            eventual: false,
            refuse_mfa_state_select: false,
        }
    }

    fn filter(text: &str) -> Result<Vec<Clause>, (u16, String)> {
        parse_filter(text).map_err(|answer| {
            (
                answer.status.as_u16(),
                answer.body.unwrap()["error"]["code"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
    }

    fn unsupported() -> Result<Vec<Clause>, (u16, String)> {
        Err((400, "Request_UnsupportedQuery".into()))
    }

    #[test]
    fn reads_the_filters_graph_serves_on_users() {
        assert_eq!(
            filter("userPrincipalName eq 'o''brien@contoso.com'"),
            Ok(vec![Clause::UpnEquals("o'brien@contoso.com".into())])
        );
        assert_eq!(
            filter(
                "startsWith(userPrincipalName, 'megan') and userType eq 'Guest' and accountEnabled eq false"
            ),
            Ok(vec![
                Clause::UpnStartsWith("megan".into()),
                Clause::UserType("Guest".into()),
                Clause::AccountEnabled(false),
            ])
        );
    }

    #[test]
    fn refuses_filters_it_does_not_serve() {
        assert_eq!(filter("mail eq 'x@contoso.com'"), unsupported());
        assert_eq!(filter("userPrincipalName ne 'x'"), unsupported());
        assert_eq!(filter("endswith(userPrincipalName,'.com')"), unsupported());
        assert_eq!(filter("startswith(displayName,'M')"), unsupported());
        assert_eq!(
            filter("userType eq 'Guest' or accountEnabled eq true"),
            unsupported()
        );
        for malformed in [
            "userPrincipalName eq 'open",
            "accountEnabled eq 'yes'",
            "accountEnabled eq maybe",
            "userType eq 'Guest' and",
            "(",
        ] {
            assert_eq!(
                filter(malformed).map_err(|(status, _)| status),
                Err(400),
                "{malformed}"
            );
        }
    }

    #[test]
    fn refuses_bad_options() {
        for bad in [
            "$select=id,mail",
            "$top=0",
            "$top=1000",
            "$orderby=displayName",
            "$count=true",
            "$skiptoken=bm9wZQ",
            "$top=5&top=6",
        ] {
            assert_eq!(
                parse_query(bad, true, &context()).unwrap_err().status,
                400,
                "{bad}"
            );
        }
        let eventual = CallContext {
            eventual: true,
            ..context()
        };
        assert!(parse_query("$count=true", true, &eventual).unwrap().count);
        assert!(parse_query("$filter=userType eq 'Guest'", false, &context()).is_err());
    }

    #[test]
    fn per_user_mfa_state_is_answered_only_when_selected_on_users_and_not_refused() {
        let tenant = Tenant::generate(3, 7);
        let state = TenantState::new(tenant.clone());
        let body = |query: &str, context: &CallContext| {
            let answer = users(&state, Some(query), context);
            (answer.status, answer.body.unwrap())
        };
        let (status, page) = body("$select=id,perUserMfaState", &context());
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            page["value"][0]["perUserMfaState"],
            tenant.users[0].per_user_mfa_state.as_str()
        );
        let (_, page) = body("$top=5", &context());
        assert!(page["value"][0].get("perUserMfaState").is_none(), "{page}");
        let refusing = CallContext {
            refuse_mfa_state_select: true,
            ..context()
        };
        let (status, page) = body("$select=id,perUserMfaState", &refusing);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
        // Never on a member list.
        assert!(parse_query("$select=perUserMfaState", false, &context()).is_err());
    }

    #[test]
    fn listing_costs_follow_graphs_table() {
        assert_eq!(resource_units(BaseCost::Users, None), 2);
        assert_eq!(
            resource_units(BaseCost::Users, Some("$select=id&$top=999")),
            1
        );
        assert_eq!(
            resource_units(BaseCost::Users, Some("$select=id&$top=5")),
            1
        );
        assert_eq!(
            resource_units(BaseCost::TransitiveMembers, Some("%24select=id&$top=10")),
            3
        );
        assert_eq!(resource_units(BaseCost::Members, None), 3);
    }

    #[test]
    fn pages_cover_every_match_once_in_order() {
        let tenant = Tenant::generate(250, 7);
        let state = TenantState::new(tenant.clone());
        let guests: Vec<&str> = tenant
            .users
            .iter()
            .filter(|u| u.user_type == UserType::Guest)
            .map(|u| u.id.as_str())
            .collect();
        let mut seen = Vec::new();
        let mut query = "$filter=userType eq 'guest'&$select=id&$top=3".to_owned();
        loop {
            let answer = users(&state, Some(&query), &context());
            assert_eq!(answer.status, StatusCode::OK);
            let body = answer.body.unwrap();
            for user in body["value"].as_array().unwrap() {
                assert_eq!(user.as_object().unwrap().len(), 1, "only the id: {user}");
                seen.push(user["id"].as_str().unwrap().to_owned());
            }
            match body["@odata.nextLink"].as_str() {
                Some(link) => {
                    let (base, next) = link.split_once('?').unwrap();
                    assert_eq!(base, "http://127.0.0.1:1/beta/users");
                    query = next.to_owned();
                }
                None => break,
            }
        }
        assert_eq!(seen, guests);
    }
}
