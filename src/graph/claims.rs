//! What a bearer token says about itself, read without verifying it (Graph verifies it).
//!
//! Used only for best-effort facts such as the tenant id (`tid`) to show next to the Graph
//! root when the token may not read `/organization`. A token that is not a JWT (opaque tokens
//! exist) simply says nothing. The token itself is never returned, logged or stored.

use secrecy::{ExposeSecret, SecretString};

/// The `tid` claim of a JWT access token, when it has one that looks like a GUID.
pub fn tenant_id(token: &SecretString) -> Option<String> {
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = base64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let tid = claims.get("tid")?.as_str()?;
    uuid::Uuid::parse_str(tid)
        .ok()
        .map(|id| id.hyphenated().to_string())
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
    fn base64url_round_trips_known_values() {
        assert_eq!(base64url_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64url_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64url_decode("_-8").unwrap(), [0xff, 0xef]);
        assert_eq!(base64url_decode("a+b"), None);
    }
}
