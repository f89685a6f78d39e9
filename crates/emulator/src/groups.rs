//! `GET /beta/groups?$filter=displayName eq '...'&$select=id,displayName`: a group's name to its
//! object id, the way mfactl's group selectors find the groups a manifest names.
//!
//! It exists to read the OData query options of this one call and hand the name to
//! [`super::state::TenantState::groups`]; it must not hold Graph's data rules, nor meter (the
//! pipeline in [`super::routes`] has). Only what mfactl sends is understood:
//! - `$filter=displayName eq '<literal>'`, the literal in OData's syntax (a `'` inside is written
//!   `''`); anything else in `$filter` is 400 `Request_UnsupportedQuery`, a malformed literal
//!   400 `BadRequest`. The name matches without regard to case, as Entra compares directory
//!   strings (not confirmed for `displayName eq`). No `$filter` lists every group.
//! - `$select` of `id` and `displayName` (the only properties the tenant file holds; another
//!   property is 400 `BadRequest`, as Graph answers a property it does not know). Without it the
//!   answer holds both.
//! - `$top` (1 to 999) keeps the first groups. There are no further pages: tenant files hold few
//!   groups.
//!
//! Options are read with or without their `$` (Graph's beta accepts both) and in any case; an
//! option the emulator does not serve (`$count`, `$search`, `$orderby`, ...) is 400 rather than
//! silently ignored.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::context::Answer;
use super::state::TenantState;
use mfactl_core::text::printable_capped;

/// The largest `$top` Graph takes for directory objects.
const MAX_TOP: usize = 999;
/// The group properties the emulator holds, in Graph's spelling.
const PROPERTIES: [&str; 2] = ["id", "displayName"];
/// How much of a sent value a message repeats.
const ECHO: usize = 80;

/// The query options of one request, checked.
#[derive(Debug, PartialEq, Eq)]
struct Query {
    /// The display name to match, or every group.
    name: Option<String>,
    /// `$select`: the properties to answer with, in [`PROPERTIES`] order (all without it).
    select: Option<Vec<&'static str>>,
    top: Option<usize>,
}

/// `GET /groups` with the request's query string (without the `?`).
pub(super) fn list(state: &TenantState, query: Option<&str>) -> Answer {
    let query = match parse_query(query.unwrap_or_default()) {
        Ok(query) => query,
        Err(answer) => return answer,
    };
    let mut groups = state.groups(query.name.as_deref());
    if let Some(top) = query.top {
        groups.truncate(top);
    }
    let select = query.select.as_deref().unwrap_or(&PROPERTIES);
    let value: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let mut object = Map::new();
            for property in select {
                let value = match *property {
                    "id" => json!(group.id),
                    _ => json!(group.display_name),
                };
                object.insert((*property).to_owned(), value);
            }
            Value::Object(object)
        })
        .collect();
    // Graph names the selected properties in the context, as OData does.
    let context = match &query.select {
        None => "https://graph.microsoft.com/beta/$metadata#groups".to_owned(),
        Some(select) => format!(
            "https://graph.microsoft.com/beta/$metadata#groups({})",
            select.join(",")
        ),
    };
    Answer::json(
        StatusCode::OK,
        json!({ "@odata.context": context, "value": value }),
    )
}

fn bad_request(message: String) -> Answer {
    Answer::error(400, "BadRequest", message)
}

/// Reads the query string: `$filter`, `$select`, `$top`; other `$` options are refused.
fn parse_query(text: &str) -> Result<Query, Answer> {
    let mut query = Query {
        name: None,
        select: None,
        top: None,
    };
    let mut seen = Vec::new();
    for (key, value) in url::form_urlencoded::parse(text.as_bytes()) {
        let option = key.strip_prefix('$').unwrap_or(&key).to_ascii_lowercase();
        if ["filter", "select", "top"].contains(&option.as_str()) {
            if seen.contains(&option) {
                return Err(bad_request(format!(
                    "Query option '${option}' is specified more than once."
                )));
            }
            seen.push(option.clone());
        }
        match option.as_str() {
            "filter" => query.name = Some(parse_filter(&value)?),
            "select" => query.select = Some(parse_select(&value)?),
            "top" => query.top = Some(parse_top(&value)?),
            _ if key.starts_with('$') => {
                return Err(bad_request(format!(
                    "Query option '{}' is not supported by the emulator's /groups (it serves \
                     $filter=displayName eq '...', $select and $top).",
                    printable_capped(&key, ECHO)
                )));
            }
            // Graph ignores parameters that are not query options.
            _ => {}
        }
    }
    Ok(query)
}

/// `displayName eq '<literal>'` → the literal's text.
fn parse_filter(filter: &str) -> Result<String, Answer> {
    let unsupported = || {
        Answer::error(
            400,
            "Request_UnsupportedQuery",
            format!(
                "Unsupported query: the emulator's /groups filters only by displayName eq '...' \
                 (got {}).",
                printable_capped(&format!("'{filter}'"), ECHO)
            ),
        )
    };
    let rest = filter.trim_start();
    let (property, rest) = rest
        .split_once(char::is_whitespace)
        .ok_or_else(unsupported)?;
    let (operator, rest) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(unsupported)?;
    if !property.eq_ignore_ascii_case("displayName") || operator != "eq" {
        return Err(unsupported());
    }
    let rest = rest.trim_start();
    let Some(quoted) = rest.strip_prefix('\'') else {
        return Err(bad_request(format!(
            "Invalid filter clause: a string literal in single quotes is expected after 'eq' (got {}).",
            printable_capped(rest, ECHO)
        )));
    };
    // The literal ends at the first quote that is not doubled; only spaces may follow it.
    let mut name = String::with_capacity(quoted.len());
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\'' {
            name.push(c);
            continue;
        }
        if quoted[at + 1..].starts_with('\'') {
            name.push('\'');
            chars.next();
            continue;
        }
        let trailing = &quoted[at + 1..];
        if !trailing.trim().is_empty() {
            return Err(bad_request(format!(
                "Invalid filter clause: unexpected {} after the string literal (a quote inside \
                 it is written twice: '').",
                printable_capped(trailing.trim(), ECHO)
            )));
        }
        return Ok(name);
    }
    Err(bad_request(
        "Invalid filter clause: the string literal is not closed with a quote.".to_owned(),
    ))
}

/// `id,displayName` → the properties, in [`PROPERTIES`] order, each once.
fn parse_select(select: &str) -> Result<Vec<&'static str>, Answer> {
    let mut wanted = Vec::new();
    for name in select.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let property = PROPERTIES
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                bad_request(format!(
                    "Could not find a property named {} on type 'microsoft.graph.group' (the \
                     emulator's groups hold id and displayName).",
                    printable_capped(&format!("'{name}'"), ECHO)
                ))
            })?;
        if !wanted.contains(property) {
            wanted.push(*property);
        }
    }
    if wanted.is_empty() {
        return Ok(PROPERTIES.to_vec());
    }
    Ok(PROPERTIES
        .iter()
        .copied()
        .filter(|p| wanted.contains(p))
        .collect())
}

fn parse_top(top: &str) -> Result<usize, Answer> {
    match top.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
        _ => Err(bad_request(format!(
            "Invalid $top {}: a whole number from 1 to {MAX_TOP} is expected.",
            printable_capped(&format!("'{top}'"), ECHO)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(filter: &str) -> Result<String, u16> {
        parse_filter(filter).map_err(|answer| answer.status.as_u16())
    }

    #[test]
    fn reads_odata_string_literals() {
        assert_eq!(name("displayName eq 'MFA Pilot'"), Ok("MFA Pilot".into()));
        assert_eq!(
            name("  DisplayName   eq  'O''Brien''s'  "),
            Ok("O'Brien's".into())
        );
        assert_eq!(name("displayName eq ''''"), Ok("'".into()));
        assert_eq!(name("displayName eq ''"), Ok(String::new()));
        assert_eq!(
            name("displayName eq 'é ☃ \u{202e}'"),
            Ok("é ☃ \u{202e}".into())
        );
    }

    #[test]
    fn refuses_what_it_does_not_serve() {
        assert_eq!(name("startswith(displayName,'MFA')"), Err(400));
        assert_eq!(name("mail eq 'x@contoso.com'"), Err(400));
        assert_eq!(name("displayName ne 'x'"), Err(400));
        assert_eq!(name("displayName eq 'unterminated"), Err(400));
        assert_eq!(name("displayName eq 'a'b'"), Err(400));
        assert_eq!(name("displayName eq x"), Err(400));
        let unsupported = parse_filter("mail eq 'x'").unwrap_err();
        assert_eq!(
            unsupported.body.unwrap()["error"]["code"],
            "Request_UnsupportedQuery"
        );
    }

    #[test]
    fn reads_the_query_string_as_sent() {
        let query = parse_query(
            "%24filter=displayName%20eq%20%27A%20%26%20B%27&$select=displayName,ID&top=2&api=1",
        )
        .unwrap();
        assert_eq!(
            query,
            Query {
                name: Some("A & B".into()),
                select: Some(vec!["id", "displayName"]),
                top: Some(2),
            }
        );
        assert_eq!(parse_query("").unwrap().select, None);
        for bad in [
            "$select=id,mail",
            "$top=0",
            "$top=1000",
            "$count=true",
            "$filter=displayName eq 'a'&filter=displayName eq 'b'",
        ] {
            assert_eq!(parse_query(bad).unwrap_err().status.as_u16(), 400, "{bad}");
        }
    }
}
