//! Client assertions: the JWT an app signs with its certificate's key (`private_key_jwt`), or
//! an external token exchanged through a federated identity credential, in place of a secret.
//!
//! It exists to keep the token endpoint's most detailed checks in one place, each refusal with
//! the AADSTS code Entra gives it: which credential an assertion is, whose certificate signed
//! it, its audience, subject, issuer and time window, and (only with `strictAssertions`) its
//! lifetime and `jti`. A federated token's signature is not checked (see [`super`]). It issues
//! nothing; [`super::SignIn`] does once these checks pass.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use serde_json::Value;

use super::{
    Context, FEDERATION_AUDIENCE, Form, OAuthError, SignIn, echo, same_url, show_time,
    signature_only,
};
use crate::tenant::AuthApp;

/// `client_assertion_type` for a JWT assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Microsoft's advice for a client assertion's lifetime; enforced only with `strictAssertions`.
const MAX_ASSERTION_LIFETIME_SECONDS: i64 = 600;
/// The most assertion ids `strictAssertions` remembers at once (each for at most 10 minutes).
const MAX_SEEN_JTIS: usize = 100_000;

impl SignIn {
    /// Checks the client's credential; returns `appidacr` ("1" secret, "2" assertion).
    pub(super) fn authenticate_client(
        &self,
        app: &AuthApp,
        form: &Form,
        ctx: &Context,
    ) -> Result<&'static str, OAuthError> {
        if let Some(assertion) = form.get("client_assertion") {
            if form.get("client_assertion_type") != Some(JWT_BEARER) {
                // AADSTS90023 InvalidRequest (Microsoft's error reference); Entra's exact text
                // for this case is not documented.
                return Err(OAuthError::invalid_request(
                    90023,
                    format!("The 'client_assertion_type' parameter must be '{JWT_BEARER}'."),
                ));
            }
            let assertion = Assertion::parse(assertion)?;
            let iss = assertion.text("iss").unwrap_or_default();
            // Entra tells the two apart the same way: an app signs its own assertions (iss is
            // its client id), a federated token comes from another issuer.
            if iss.eq_ignore_ascii_case(&app.client_id) {
                self.certificate_assertion(app, &assertion, ctx)?;
            } else {
                self.federated_assertion(app, &assertion, ctx)?;
            }
            return Ok("2");
        }
        match form.get("client_secret") {
            Some(secret) if app.secret.as_ref().is_some_and(|s| s.matches(secret)) => Ok("1"),
            // AADSTS7000215; the text is Entra's (seen in its answers).
            Some(_) => Err(OAuthError::invalid_client(
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request \
                     is the client secret value, not the client secret ID, for a secret added to \
                     app '{}'.",
                    app.client_id
                ),
            )),
            // AADSTS7000218 (Microsoft's error reference).
            None => Err(OAuthError::invalid_client(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or \
                 'client_secret'.",
            )),
        }
    }

    /// A private-key JWT signed with the app's certificate (certificate-credentials.md).
    fn certificate_assertion(
        &self,
        app: &AuthApp,
        assertion: &Assertion,
        ctx: &Context,
    ) -> Result<(), OAuthError> {
        if !matches!(assertion.header.alg, Algorithm::PS256 | Algorithm::RS256) {
            return Err(malformed_assertion(&format!(
                "the signing algorithm {:?} is not accepted here (PS256 or RS256)",
                assertion.header.alg
            )));
        }
        if !assertion
            .text("sub")
            .is_some_and(|sub| sub.eq_ignore_ascii_case(&app.client_id))
        {
            // AADSTS700021 (Azure SDK for Java's troubleshooting guide).
            return Err(OAuthError::invalid_client(
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter. \
                 Review the documentation at \
                 https://learn.microsoft.com/entra/identity-platform/certificate-credentials.",
            ));
        }
        let token_urls = ctx.token_urls(&self.tenant_id, &self.domain);
        if !assertion
            .audiences()
            .iter()
            .any(|aud| token_urls.iter().any(|url| same_url(aud, url)))
        {
            // AADSTS700023 (Azure SDK for Java's troubleshooting guide).
            return Err(OAuthError::invalid_client(
                700023,
                "Client assertion audience claim does not match Realm issuer. Review the \
                 documentation at \
                 https://learn.microsoft.com/entra/identity-platform/certificate-credentials.",
            ));
        }
        let presented = assertion
            .header
            .x5t_s256
            .clone()
            .or_else(|| assertion.header.x5t.clone())
            .unwrap_or_default();
        // Thumbprints are base64url; some clients pad them.
        let presented = presented.trim_end_matches('=').to_owned();
        let certificate = app.certificate.as_ref().filter(|certificate| {
            presented == certificate.x5t_s256() || presented == certificate.x5t()
        });
        // AADSTS700027 with Entra's texts for each reason (seen in its answers).
        let Some(certificate) = certificate else {
            return Err(OAuthError::invalid_client(
                700027,
                format!(
                    "The certificate with identifier used to sign the client assertion is not \
                     registered on application. [Reason - The key was not found., Thumbprint of \
                     key used by client: '{}']",
                    echo(&presented)
                ),
            ));
        };
        if !certificate.is_valid_at(ctx.now) {
            return Err(OAuthError::invalid_client(
                700027,
                format!(
                    "The certificate with identifier used to sign the client assertion is expired \
                     on application. [Reason - The key used is expired., Thumbprint of key used \
                     by client: '{}', Found key '{}']",
                    certificate.thumbprint_hex(),
                    certificate.validity()
                ),
            ));
        }
        let (modulus, exponent) = certificate.rsa_components();
        let key = DecodingKey::from_rsa_raw_components(modulus, exponent);
        if let Err(err) = jsonwebtoken::decode::<Value>(
            &assertion.text,
            &key,
            &signature_only(assertion.header.alg),
        ) {
            return Err(match err.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => OAuthError::invalid_client(
                    700027,
                    "Client assertion failed signature validation.",
                ),
                _ => malformed_assertion("its signature cannot be read"),
            });
        }
        self.assertion_lifetime(assertion, ctx)
    }

    /// An external token exchanged through a federated identity credential. Its signature is
    /// not checked: the emulator cannot fetch the issuer's keys (see the module docs).
    fn federated_assertion(
        &self,
        app: &AuthApp,
        assertion: &Assertion,
        ctx: &Context,
    ) -> Result<(), OAuthError> {
        let iss = assertion.text("iss").unwrap_or_default();
        let sub = assertion.text("sub").unwrap_or_default();
        let audiences = assertion.audiences();
        let Some(subject) = &app.federated_subject else {
            // AADSTS70021 (Azure DevOps's workload identity troubleshooting).
            return Err(OAuthError::invalid_client(
                70021,
                format!(
                    "No matching federated identity record found for presented assertion. \
                     Assertion Issuer: '{}'. Assertion Subject: '{}'. Assertion Audience: '{}'.",
                    echo(iss),
                    echo(sub),
                    echo(&audiences.join(","))
                ),
            ));
        };
        let check = "Please check your federated identity credential Subject, Audience and \
                     Issuer against the presented assertion.";
        // AADSTS700211/700212/700213: issuer, audience, subject (seen in Entra's answers;
        // matching is exact, as Entra's documentation says).
        if app
            .federated_issuer
            .as_ref()
            .is_some_and(|issuer| issuer != iss)
        {
            return Err(OAuthError::invalid_client(
                700211,
                format!(
                    "No matching federated identity record found for presented assertion issuer \
                     '{}'. {check}",
                    echo(iss)
                ),
            ));
        }
        if !audiences.iter().any(|aud| aud == FEDERATION_AUDIENCE) {
            return Err(OAuthError::invalid_client(
                700212,
                format!(
                    "No matching federated identity record found for presented assertion \
                     audience '{}'. {check}",
                    echo(&audiences.join(","))
                ),
            ));
        }
        if sub != subject {
            return Err(OAuthError::invalid_client(
                700213,
                format!(
                    "No matching federated identity record found for presented assertion subject \
                     '{}'. {check}",
                    echo(sub)
                ),
            ));
        }
        self.assertion_lifetime(assertion, ctx)
    }

    /// `nbf`/`exp` around now and, with `strictAssertions`, a short lifetime and a fresh `jti`.
    fn assertion_lifetime(&self, assertion: &Assertion, ctx: &Context) -> Result<(), OAuthError> {
        let Some(exp) = assertion.number("exp") else {
            return Err(malformed_assertion("it has no 'exp' claim"));
        };
        let nbf = assertion.number("nbf");
        if ctx.now >= exp || nbf.is_some_and(|nbf| ctx.now < nbf) {
            // AADSTS700024 (Azure DevOps's workload identity troubleshooting; the times are
            // given as Entra's answers give them).
            return Err(OAuthError::invalid_client(
                700024,
                format!(
                    "Client assertion is not within its valid time range. Current time: {}, \
                     assertion valid from {}, expiry time of assertion {}.",
                    show_time(ctx.now),
                    nbf.map_or_else(|| "(not given)".to_owned(), show_time),
                    show_time(exp)
                ),
            ));
        }
        if !self.auth.strict_assertions {
            return Ok(());
        }
        let start = nbf.or_else(|| assertion.number("iat")).unwrap_or(ctx.now);
        if exp.saturating_sub(start) > MAX_ASSERTION_LIFETIME_SECONDS {
            // The emulator's own rule (strictAssertions): Entra puts no limit on exp.
            return Err(OAuthError::invalid_client(
                700024,
                format!(
                    "Client assertion is not within its valid time range: it is valid for {} \
                     seconds, more than the {MAX_ASSERTION_LIFETIME_SECONDS} Microsoft advises \
                     (refused by the emulator's strictAssertions).",
                    exp.saturating_sub(start)
                ),
            ));
        }
        let Some(jti) = assertion.text("jti").filter(|jti| !jti.is_empty()) else {
            return Err(malformed_assertion(
                "it has no 'jti' claim (required by the emulator's strictAssertions)",
            ));
        };
        let mut sessions = self.lock();
        sessions.seen_jtis.retain(|_, until| *until > ctx.now);
        // A federated assertion is not signature-checked, so anyone can mint fresh jtis: bound
        // what they can make the emulator remember.
        if sessions.seen_jtis.len() >= MAX_SEEN_JTIS {
            return Err(OAuthError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                None,
                format!("The emulator remembers {MAX_SEEN_JTIS} assertion ids; let some expire."),
            ));
        }
        if sessions.seen_jtis.insert(jti.to_owned(), exp).is_some() {
            // AADSTS50013 InvalidAssertion (Microsoft's error reference). Entra accepts a
            // reused assertion; this refusal is the emulator's (strictAssertions).
            return Err(OAuthError::invalid_client(
                50013,
                format!(
                    "Assertion is invalid: the jti '{}' was presented before (refused by the \
                     emulator's strictAssertions; Entra accepts a reused assertion).",
                    echo(jti)
                ),
            ));
        }
        Ok(())
    }
}

/// A client assertion: its text, header and (unverified) claims.
struct Assertion {
    text: String,
    header: Header,
    claims: Value,
}

impl Assertion {
    fn parse(text: &str) -> Result<Assertion, OAuthError> {
        let header = jsonwebtoken::decode_header(text)
            .map_err(|_| malformed_assertion("it is not a JWT"))?;
        let claims = text
            .split('.')
            .nth(1)
            .and_then(|payload| URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .filter(Value::is_object)
            .ok_or_else(|| malformed_assertion("its claims are not JSON"))?;
        Ok(Assertion {
            text: text.to_owned(),
            header,
            claims,
        })
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    fn number(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        })
    }

    /// `aud`, a string or a list of them.
    fn audiences(&self) -> Vec<String> {
        match self.claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// AADSTS50027 InvalidJwtToken (Microsoft's error reference).
fn malformed_assertion(why: &str) -> OAuthError {
    OAuthError::invalid_client(50027, format!("JWT token is invalid or malformed: {why}."))
}
