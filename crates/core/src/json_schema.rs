//! JSON Schema pieces that say, in schema terms, what mfactl's readers accept, so that the
//! schemas in `schemas/` (built by the `mfactl` library's `schemas`) never flag a file the tool reads: values
//! are trimmed of Unicode whitespace and matched without regard to case ([`case_insensitive`]),
//! users are what the manifest reader's `check_user` allows ([`user_pattern`]), object ids are the
//! forms the `uuid` crate reads ([`Guid`]), and the tenant file's typed YAML reader
//! (serde-saphyr) turns scalars into the field's type ([`YamlText`], [`YamlBool`], [`YamlUint`]).
//!
//! It sits at the bottom, in mfactl-core beside `text`, because the model's types and the
//! emulator's reader name these pieces in their `#[schemars(with = ...)]` attributes. It builds schemas only: it
//! never parses a manifest or a tenant file, and nothing here does I/O.
//!
//! Patterns are ECMA-262 regular expressions for the `u` flag, as JSON Schema 2020-12 asks and
//! as editors run them, and keep to what other validators' dialects (Rust's `regex` and
//! `fancy-regex`, Python's `re`) read the same way: classes are spelt out (`\s` and `.` differ
//! between dialects), characters outside ASCII are `\uXXXX` (or themselves above U+FFFF), and
//! case-insensitivity is `[aA]` rather than a flag (Unicode case folding would also take `ſ` for
//! `s`, which `eq_ignore_ascii_case` does not).

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::LazyLock;

use schemars::transform::transform_subschemas;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// The characters `str::trim` removes (`char::is_whitespace`), as the inside of a class.
static WHITESPACE: LazyLock<String> = LazyLock::new(|| class_items(char::is_whitespace));
/// The characters no user name may hold ([`crate::text::is_hidden_or_control`]).
static HIDDEN: LazyLock<String> = LazyLock::new(|| class_items(crate::text::is_hidden_or_control));

/// Every character for which `keep` holds, as ranges inside a regex class (`\u0009-\u000D...`).
fn class_items(keep: fn(char) -> bool) -> String {
    let mut out = String::new();
    let mut run: Option<(char, char)> = None;
    let flush = |out: &mut String, (first, last): (char, char)| {
        out.push_str(&escape(first));
        if last != first {
            out.push('-');
            out.push_str(&escape(last));
        }
    };
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        if !keep(c) {
            continue;
        }
        run = match run {
            Some((first, last)) if u32::from(last) + 1 == u32::from(c) => Some((first, c)),
            Some(done) => {
                flush(&mut out, done);
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some(done) = run {
        flush(&mut out, done);
    }
    out
}

/// One character for a regex class: `\uXXXX` in the Basic Multilingual Plane, which every
/// regex dialect in use reads alike (ECMA-262, Rust, Python, PCRE); above it the character
/// itself, since `\u{XXXXX}` is ECMA-262's `u` flag only (Python's `re` refuses the pattern) and
/// a surrogate pair would be two characters to the dialects that count code points.
fn escape(c: char) -> String {
    if u32::from(c) <= 0xFFFF {
        format!("\\u{:04X}", u32::from(c))
    } else {
        c.to_string()
    }
}

/// `text` as a pattern piece matching it without regard to ASCII case: `[pP][uU][sS][hH]`.
fn any_case(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else if c.is_ascii_alphanumeric() || c == '_' {
                c.to_string()
            } else {
                escape(c)
            }
        })
        .collect()
}

/// A whole value that, trimmed of Unicode whitespace, is one of `values` in any ASCII case:
/// what the readers' `parse` (`eq_ignore_ascii_case` after `trim`) accepts.
pub fn case_insensitive_pattern<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let ws = &*WHITESPACE;
    let choices: Vec<String> = values.into_iter().map(any_case).collect();
    format!("^[{ws}]*(?:{})[{ws}]*$", choices.join("|"))
}

/// A value holding something besides whitespace (`!text.trim().is_empty()`).
pub fn not_blank_pattern() -> String {
    format!("[^{}]", &*WHITESPACE)
}

/// A value that is one word once trimmed: no whitespace inside.
pub fn one_word_pattern() -> String {
    let ws = &*WHITESPACE;
    format!("^[{ws}]*[^{ws}]+[{ws}]*$")
}

/// What the manifest reader's `check_user` accepts once the value is trimmed: an object id in
/// Graph's form, or a userPrincipalName with one `@`, a name that does not end with a dot and
/// holds no whitespace, control, bidi or invisible character, and a DNS domain of ASCII labels;
/// at most 113 characters, 64 before the `@` (not counted for a guest's `#EXT#` name) and 48
/// after it.
pub fn user_pattern() -> String {
    let (ws, hidden) = (&*WHITESPACE, &*HIDDEN);
    let hex = "[0-9A-Fa-f]";
    let guid = format!("{hex}{{8}}-{hex}{{4}}-{hex}{{4}}-{hex}{{4}}-{hex}{{12}}");
    let name_char = format!("[^@{ws}{hidden}]");
    let name_end = format!("[^@.{ws}{hidden}]");
    let label = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
    let upn = format!(
        "(?=[^{ws}]{{1,113}}[{ws}]*$)(?:{name_char}{{0,63}}{name_end}|{name_char}*#EXT#)\
         @(?=[A-Za-z0-9.-]{{1,48}}[{ws}]*$){label}(?:\\.{label})+"
    );
    format!("^[{ws}]*(?:{guid}|{upn})[{ws}]*$")
}

/// What `manifest::tenants::check_tenant` accepts once the value is trimmed: a tenant id (a
/// GUID in its 36-character hyphenated form, any case) or a domain name of at most 253
/// characters, two labels or more of ASCII letters, digits and `-` (not first or last), each at
/// most 63 long.
pub fn tenant_pattern() -> String {
    let ws = &*WHITESPACE;
    let hex = "[0-9A-Fa-f]";
    let guid = format!("{hex}{{8}}-{hex}{{4}}-{hex}{{4}}-{hex}{{4}}-{hex}{{12}}");
    let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let domain = format!("(?=[A-Za-z0-9.-]{{1,253}}[{ws}]*$){label}(?:\\.{label})+");
    format!("^[{ws}]*(?:{guid}|{domain})[{ws}]*$")
}

/// The forms `uuid::Uuid::try_parse` reads: hyphenated, 32 digits, braced, or a `urn:uuid:`
/// (any case) URN, hex digits in any case, nothing around them.
pub fn guid_pattern() -> String {
    format!("^(?:{})$", guid_forms())
}

/// [`guid_pattern`]'s alternatives, unanchored, to build other patterns with.
pub fn guid_forms() -> String {
    let hex = "[0-9A-Fa-f]";
    let hyphenated = format!("{hex}{{8}}-{hex}{{4}}-{hex}{{4}}-{hex}{{4}}-{hex}{{12}}");
    format!(
        "{hyphenated}|{hex}{{32}}|\\{{{hyphenated}\\}}|{}{hyphenated}",
        any_case("urn:uuid:")
    )
}

/// A value that, trimmed, is one of `words` in any case or a GUID in a [`guid_forms`] form.
pub fn word_or_guid_pattern<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let ws = &*WHITESPACE;
    let mut choices: Vec<String> = words.into_iter().map(any_case).collect();
    choices.push(guid_forms());
    format!("^[{ws}]*(?:{})[{ws}]*$", choices.join("|"))
}

/// Rewrites a string `enum` into `anyOf` the canonical values (which editors offer for
/// completion) and a [`case_insensitive_pattern`] of them (which takes `SMS`, `Enabled` and
/// ` push `, as the readers do). Returns whether `schema` was such an enum.
pub fn case_insensitive(schema: &mut Schema) -> bool {
    let Some(object) = schema.as_object_mut() else {
        return false;
    };
    let values: Option<Vec<String>> = match object.get("enum") {
        Some(Value::Array(values)) => values
            .iter()
            .map(|value| value.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    };
    let Some(values) = values else {
        return false;
    };
    object.remove("enum");
    object.remove("type");
    let pattern = case_insensitive_pattern(values.iter().map(String::as_str));
    object.insert(
        "anyOf".to_owned(),
        serde_json::json!([
            { "type": "string", "enum": values },
            { "type": "string", "pattern": pattern },
        ]),
    );
    true
}

/// [`case_insensitive`] for every string enum in `schema`, at any depth (`$defs` included): the
/// transform of a document whose reader matches every enum value without regard to case.
pub fn case_insensitive_enums(schema: &mut Schema) {
    if !case_insensitive(schema) {
        transform_subschemas(&mut case_insensitive_enums, schema);
    }
}

/// `T`'s string enum, matched without regard to case and surrounding whitespace (the model's
/// `parse`, and the tenant reader's `UserType::parse`).
pub struct CaseInsensitive<T>(PhantomData<T>);

impl<T: JsonSchema> JsonSchema for CaseInsensitive<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("CaseInsensitive<{}>", T::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = T::json_schema(generator);
        case_insensitive(&mut schema);
        schema
    }
}

/// Declares unit types whose schema is fixed, each `struct NAME => VALUE;` (a JSON object),
/// named NAME in `$defs`. The crate using it depends on schemars.
#[doc(hidden)]
#[macro_export]
macro_rules! __fixed_schemas {
    ($($(#[$meta:meta])* $vis:vis struct $name:ident => $schema:expr;)+) => {$(
        $(#[$meta])*
        $vis struct $name;

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::Schema::try_from($schema).expect("an object is a schema")
            }
        }
    )+};
}
pub use __fixed_schemas as fixed_schemas;

fixed_schemas! {
    /// An object id, in any form `uuid::Uuid::try_parse` reads (the tenant file's ids).
    pub struct Guid => json!({
        "description": "An object id (GUID): 8-4-4-4-12 hex digits, or 32 digits, braced or a urn:uuid: URN.",
        "type": "string",
        "pattern": guid_pattern(),
    });

    /// A text field of the tenant file: serde-saphyr's typed reader takes any scalar as its
    /// text (`displayName: 123` is "123"), so a number or boolean is text too.
    pub struct YamlText => json!({ "type": ["string", "number", "boolean"] });

    /// [`YamlText`] that must not be blank once trimmed (a number or boolean never is).
    pub struct YamlNonBlank => json!({
        "anyOf": [
            { "type": "string", "pattern": not_blank_pattern() },
            { "type": ["number", "boolean"] },
        ]
    });

    /// [`YamlText`] that is one word once trimmed (a permission name: a token's `scp`
    /// separates them with spaces).
    pub struct YamlWord => json!({
        "anyOf": [
            { "type": "string", "pattern": one_word_pattern() },
            { "type": ["number", "boolean"] },
        ]
    });

    /// A boolean of the tenant file: `true`/`false`, or a YAML 1.1 word (`yes`, `off`), which a
    /// YAML 1.2 editor reads as text but the reader takes as a boolean.
    pub struct YamlBool => json!({ "anyOf": [{ "type": "boolean" }, yaml11_boolean_text()] });

    /// A user as the manifest reader's `check_user` accepts it (after trimming): [`user_pattern`].
    pub struct UserName => json!({
        "description": "userPrincipalName (name@domain) or object id (a GUID in Graph's 8-4-4-4-12 form).",
        "type": "string",
        "pattern": user_pattern(),
    });

    /// Text that is not blank once trimmed.
    pub struct NonBlank => json!({ "type": "string", "pattern": not_blank_pattern() });
}

/// The words serde-saphyr's YAML 1.1 booleans take (any case, ASCII padding ignored):
/// `parse_yaml11_bool`, which the tenant reader (not strict) applies to plain and quoted scalars.
pub const YAML11_BOOLEANS: [&str; 8] = ["true", "yes", "y", "on", "false", "no", "n", "off"];

/// A string serde-saphyr reads as a YAML 1.1 boolean, `[ \t\r\n]` padding allowed.
pub fn yaml11_boolean_text() -> Value {
    let choices: Vec<String> = YAML11_BOOLEANS.iter().map(|word| any_case(word)).collect();
    serde_json::json!({
        "type": "string",
        "pattern": format!("^[\\t\\n\\r ]*(?:{})[\\t\\n\\r ]*$", choices.join("|")),
    })
}

/// A whole number from `MIN` to `MAX` in the tenant file. The typed reader also takes it written
/// as text (`"3600"`, `"0x1F"`, `"1_000"`); such a string is accepted here whatever its value
/// (a pattern cannot compare numbers), and the reader checks the range.
pub struct YamlUint<const MIN: u64, const MAX: u64>;

impl<const MIN: u64, const MAX: u64> JsonSchema for YamlUint<MIN, MAX> {
    fn schema_name() -> Cow<'static, str> {
        format!("YamlUint_{MIN}_{MAX}").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let digits = "(?:0[xX][0-9A-Fa-f](?:_?[0-9A-Fa-f])*|0[oO][0-7](?:_?[0-7])*|0[bB][01](?:_?[01])*|[0-9](?:_?[0-9])*)";
        json_schema!({
            "anyOf": [
                { "type": "integer", "minimum": MIN, "maximum": MAX },
                { "type": "string", "pattern": format!("^[\\t\\n\\r ]*\\+?{digits}[\\t\\n\\r ]*$") },
            ]
        })
    }
}
