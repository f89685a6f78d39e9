//! What a bearer token says about itself, read without verifying it (Graph verifies it).
//!
//! Used only for best-effort facts: the tenant id (`tid`) to show next to the Graph root when the
//! token may not read `/organization`, who signed in, which permissions the token carries (an
//! early warning before a run, never a decision), and when it expires. A token that is not a JWT
//! (opaque tokens exist) simply says nothing. The token itself is never returned, logged or
//! stored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::permissions::TokenKind;

/// What an access token says about itself (decoded without verification).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// `tid`, when it is a GUID (lowercase, hyphenated).
    pub tenant_id: Option<String>,
    /// `appid` (v1 tokens) or `azp` (v2 tokens): the application the token was issued to.
    pub app_id: Option<String>,
    /// `upn`, else `preferred_username`, else `unique_name`: the signed-in user of a delegated
    /// token (app-only tokens have none).
    pub upn: Option<String>,
    /// `roles`: application permissions (app-only tokens).
    pub roles: Vec<String>,
    /// `scp`, split on spaces: delegated permissions.
    pub scopes: Vec<String>,
    /// `exp`.
    pub expires_at: Option<SystemTime>,
    /// `aud`: the resource the token is for (e.g. `https://graph.microsoft.com` or Graph's app id
    /// `00000003-0000-0000-c000-000000000000`).
    pub audience: Option<String>,
}

impl Claims {
    /// The permissions the token lists and their kind: an app token's `roles`, else a
    /// delegated token's `scp`; `None` when it lists neither (Graph alone can judge it then).
    pub fn granted(&self) -> Option<(TokenKind, &[String])> {
        if !self.roles.is_empty() {
            Some((TokenKind::Application, &self.roles))
        } else if !self.scopes.is_empty() {
            Some((TokenKind::Delegated, &self.scopes))
        } else {
            None
        }
    }
}

/// The claims of a JWT access token; `None` for an opaque token or one whose payload is not a
/// JSON object.
pub fn decode(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url_decode(payload)?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let claims = claims.as_object()?;
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let tenant_id = text("tid").and_then(|tid| {
        uuid::Uuid::parse_str(&tid)
            .ok()
            .map(|id| id.hyphenated().to_string())
    });
    let roles = match claims.get("roles") {
        Some(Value::Array(roles)) => roles
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let scopes = text("scp")
        .map(|scp| scp.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_u64)
        .and_then(|exp| UNIX_EPOCH.checked_add(Duration::from_secs(exp)));
    let audience = match claims.get("aud") {
        Some(Value::String(aud)) => Some(aud.clone()),
        Some(Value::Array(auds)) => auds.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    Some(Claims {
        tenant_id,
        app_id: text("appid").or_else(|| text("azp")),
        upn: text("upn")
            .or_else(|| text("preferred_username"))
            .or_else(|| text("unique_name")),
        roles,
        scopes,
        expires_at,
        audience,
    })
}

/// The `tid` claim of a JWT access token, when it has one that looks like a GUID.
pub fn tenant_id(token: &SecretString) -> Option<String> {
    decode(token.expose_secret())?.tenant_id
}

/// Decodes unpadded (or padded) base64url, as JWT segments are written.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tenant_of_a_jwt_and_nothing_of_an_opaque_token() {
        // {"alg":"none"}.{"tid":"9C0E5F1A-0000-4000-8000-000000000001","aud":"x"}.
        let token = "eyJhbGciOiJub25lIn0.eyJ0aWQiOiI5QzBFNUYxQS0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDEiLCJhdWQiOiJ4In0.sig";
        assert_eq!(
            tenant_id(&SecretString::from(token)).as_deref(),
            Some("9c0e5f1a-0000-4000-8000-000000000001")
        );
        for opaque in ["test-token", "a.b.c", "eyJhbGciOiJub25lIn0.e30.x", ""] {
            assert_eq!(tenant_id(&SecretString::from(opaque)), None, "{opaque}");
        }
    }

    #[test]
    fn decodes_app_and_delegated_tokens_and_nothing_of_an_opaque_one() {
        let jwt = |payload: &str| {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!(
                "{}.{}.sig",
                b64.encode(r#"{"alg":"none"}"#),
                b64.encode(payload)
            )
        };
        let app = decode(&jwt(
            r#"{"tid":"9c0e5f1a-0000-4000-8000-000000000001","appid":"2b1a0000-0000-4000-8000-000000000002",
                "roles":["UserAuthenticationMethod.ReadWrite.All","Policy.Read.All"],"exp":1700000000,
                "aud":"https://graph.microsoft.com"}"#,
        ))
        .unwrap();
        assert_eq!(
            app.app_id.as_deref(),
            Some("2b1a0000-0000-4000-8000-000000000002")
        );
        assert_eq!(app.roles.len(), 2);
        assert!(app.scopes.is_empty() && app.upn.is_none());
        assert_eq!(
            app.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(app.audience.as_deref(), Some("https://graph.microsoft.com"));
        let user = decode(&jwt(
            r#"{"azp":"14d82eec-204b-4c2f-b7e8-296a70dab67e","upn":"megan@contoso.com",
                "scp":"User.Read.All  Policy.ReadWrite.AuthenticationMethod"}"#,
        ))
        .unwrap();
        assert_eq!(user.upn.as_deref(), Some("megan@contoso.com"));
        assert_eq!(
            user.scopes,
            ["User.Read.All", "Policy.ReadWrite.AuthenticationMethod"]
        );
        assert_eq!(
            user.app_id.as_deref(),
            Some("14d82eec-204b-4c2f-b7e8-296a70dab67e")
        );
        assert_eq!(decode("opaque-token"), None);
        assert_eq!(decode(&jwt("[1,2]")), None);
    }

    #[test]
    fn base64url_round_trips_known_values() {
        assert_eq!(base64url_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64url_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64url_decode("_-8").unwrap(), [0xff, 0xef]);
        assert_eq!(base64url_decode("a+b"), None);
    }
}
