//! `certificate`: an application's certificate and RSA key, from `AZURE_CLIENT_CERTIFICATE_PATH`
//! (a PEM file with a `CERTIFICATE` and a `PRIVATE KEY` or `RSA PRIVATE KEY` block, or a PKCS#12
//! `.pfx`/`.p12` opened with `AZURE_CLIENT_CERTIFICATE_PASSWORD`, possibly empty), signing a
//! fresh client assertion for each client credentials request.
//!
//! The assertion, as Microsoft's "certificate credentials" page specifies it today
//! (learn.microsoft.com/entra/identity-platform/certificate-credentials): header
//! `{"alg": "PS256", "typ": "JWT", "x5t#S256": base64url(SHA-256(certificate DER))}`, claims
//! `aud` = the token URL, `iss` = `sub` = the client id, a fresh GUID `jti`, `nbf` = `iat` = now,
//! `exp` 5 minutes later (the page asks for 5–10 minutes at most). Older docs and the Azure SDK
//! for Rust use RS256 with a SHA-1 `x5t`; PS256 with `x5t#S256` is what Microsoft asks for now.
//!
//! The key is parsed once, when the source is built, so a bad file fails before any work; it is
//! held by aws-lc-rs and signs directly (RSA-PSS, SHA-256) — jsonwebtoken's `EncodingKey` would
//! need the PKCS#1 form, which a PKCS#12 file does not hold. Of the certificates in the file, the
//! one whose public key is the private key's is used: a chain's CA first in the file does not
//! get its thumbprint sent.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use super::http::{JWT_BEARER, SignInHttp, request_token};
use super::secret::AppIdentity;
use super::settings::{CERTIFICATE_PASSWORD_ENV, CERTIFICATE_PATH_ENV};
use super::{AccessToken, AuthError, AuthSettings, Credential, SourceKind};
use crate::text::printable;

/// How long an assertion is valid: Microsoft asks for 5–10 minutes at most.
pub(super) const ASSERTION_LIFETIME_SECS: u64 = 300;

/// The largest certificate file read (a PEM chain or a .pfx is a few kilobytes).
const MAX_FILE: u64 = 1 << 20;

/// An RSA key and the certificate that carries its public part.
pub(super) struct ClientKey {
    key: KeyPair,
    /// base64url(SHA-256(certificate DER)): the assertion's `x5t#S256`.
    thumbprint_sha256: String,
    /// Hex SHA-1 of the certificate DER, as the Entra admin center lists certificates.
    thumbprint_sha1: String,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("key", &"[redacted]")
            .field("thumbprint_sha1", &self.thumbprint_sha1)
            .finish()
    }
}

impl ClientKey {
    /// Reads a PEM or PKCS#12 file (PKCS#12 when the name ends in `.pfx`/`.p12` or the file
    /// holds no PEM block).
    pub fn load(path: &Path, password: Option<&SecretString>) -> Result<ClientKey, AuthError> {
        let problem = |problem: String| AuthError::Certificate {
            path: printable(&path.to_string_lossy()).into_owned(),
            problem,
        };
        let bytes = read_capped(path).map_err(|error| {
            problem(format!(
                "cannot read it ({error}); AZURE_CLIENT_CERTIFICATE_PATH names it"
            ))
        })?;
        let pkcs12_name = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("pfx") || e.eq_ignore_ascii_case("p12"));
        let is_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
        let (keys, certificates) = if pkcs12_name || !is_pem {
            let password = password.map(|p| p.expose_secret()).unwrap_or_default();
            pkcs12(&bytes, password).map_err(problem)?
        } else {
            pem(&bytes).map_err(problem)?
        };
        if certificates.is_empty() {
            return Err(problem(
                "holds no certificate: it needs the certificate registered on the app as well \
                 as its private key"
                    .to_owned(),
            ));
        }
        let (key, certificate) = keys
            .into_iter()
            .find_map(|key| {
                let public = key.public_key().as_ref().to_vec();
                certificates
                    .iter()
                    .find(|der| rsa_public_key_of(der) == Some(public.as_slice()))
                    .map(|certificate| (key, certificate))
            })
            .ok_or_else(|| {
                problem("none of its certificates belongs to its private key".to_owned())
            })?;
        Ok(ClientKey {
            key,
            thumbprint_sha256: URL_SAFE_NO_PAD
                .encode(digest::digest(&digest::SHA256, certificate).as_ref()),
            thumbprint_sha1: digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, certificate)
                .as_ref()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect(),
        })
    }

    /// A signed client assertion for `audience` (the token URL), valid from `now` for
    /// [`ASSERTION_LIFETIME_SECS`].
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<SecretString, AuthError> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let header = serde_json::json!({
            "alg": "PS256",
            "typ": "JWT",
            "x5t#S256": self.thumbprint_sha256,
        });
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PSS_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| AuthError::Certificate {
                path: "(loaded key)".to_owned(),
                problem: "signing the client assertion failed".to_owned(),
            })?;
        Ok(SecretString::from(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }

    /// The SHA-1 thumbprint in hex, as the Entra admin center shows it.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint_sha1
    }
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The keys and the certificates of a PEM file.
fn pem(bytes: &[u8]) -> Result<(Vec<KeyPair>, Vec<Vec<u8>>), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "is not a PEM text file".to_owned())?;
    let mut keys = Vec::new();
    let mut certificates = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or("has a damaged PEM block (no end to its BEGIN line)")?;
        let label = &after[..label_end];
        let body_and_rest = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_and_rest.find(&end_marker).ok_or_else(|| {
            format!(
                "has a PEM block \"{}\" without its END line",
                printable(label)
            )
        })?;
        let body = &body_and_rest[..body_end];
        rest = &body_and_rest[body_end + end_marker.len()..];
        // PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` header.
        if label == "ENCRYPTED PRIVATE KEY" || body.contains("Proc-Type:") {
            return Err(format!(
                "holds an encrypted private key: give an unencrypted PEM key, or a PKCS#12 \
                 (.pfx) file with its password in {CERTIFICATE_PASSWORD_ENV}"
            ));
        }
        let der = || {
            let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD.decode(base64).map_err(|_| {
                format!(
                    "has a PEM block \"{}\" that is not base64",
                    printable(label)
                )
            })
        };
        match label {
            "CERTIFICATE" => certificates.push(der()?),
            "PRIVATE KEY" => keys.push(KeyPair::from_pkcs8(&der()?).map_err(|_| {
                "holds a private key that is not an RSA key (Entra certificate credentials here \
                 need RSA)"
                    .to_owned()
            })?),
            "RSA PRIVATE KEY" => keys.push(
                KeyPair::from_der(&der()?)
                    .map_err(|_| "holds a damaged RSA PRIVATE KEY block".to_owned())?,
            ),
            "EC PRIVATE KEY" => {
                return Err(
                    "holds an EC key: Entra certificate credentials here need RSA".to_owned(),
                );
            }
            _ => {}
        }
    }
    if keys.is_empty() {
        return Err(
            "holds no PRIVATE KEY (or RSA PRIVATE KEY) block: it needs the private key \
                    as well as the certificate"
                .to_owned(),
        );
    }
    Ok((keys, certificates))
}

/// The keys and the certificates of a PKCS#12 file.
fn pkcs12(bytes: &[u8], password: &str) -> Result<(Vec<KeyPair>, Vec<Vec<u8>>), String> {
    use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
    let store =
        KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Relaxed).map_err(|error| {
            format!(
                "cannot open it as PKCS#12 ({}): a wrong {CERTIFICATE_PASSWORD_ENV}, or not a \
                 .pfx file",
                printable(&error.to_string())
            )
        })?;
    // Relaxed: a certificate not linked to its key by a local key id is still a candidate; the
    // key is matched to a certificate by its public key below.
    let mut keys = Vec::new();
    let mut certificates = Vec::new();
    for (_, entry) in store.entries() {
        match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => {
                keys.push(
                    KeyPair::from_pkcs8(chain.key().as_der())
                        .map_err(|_| "holds a private key that is not an RSA key".to_owned())?,
                );
                certificates.extend(chain.certs().iter().map(|c| c.as_der().to_vec()));
            }
            KeyStoreEntry::Certificate(certificate) => {
                certificates.push(certificate.as_der().to_vec())
            }
            KeyStoreEntry::Secret(_) => {}
        }
    }
    if keys.is_empty() {
        return Err(
            "holds no private key (export the certificate with its private key)".to_owned(),
        );
    }
    Ok((keys, certificates))
}

/// One DER element: its tag, its contents and what follows it.
pub(super) fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The RSAPublicKey (PKCS#1 DER) inside an X.509 certificate's subjectPublicKeyInfo.
fn rsa_public_key_of(certificate: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, certificate, _) = der_element(certificate)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = der_element(certificate)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] EXPLICIT version, when present.
    if rest.first() == Some(&0xa0) {
        rest = der_element(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = der_element(rest)?.2;
    }
    let (SEQUENCE, spki, _) = der_element(rest)? else {
        return None;
    };
    let (_, _, after_algorithm) = der_element(spki)?;
    let (0x03, bits, _) = der_element(after_algorithm)? else {
        return None;
    };
    // A BIT STRING's first byte counts unused bits: 0 for a key.
    match bits.split_first()? {
        (0, key) => Some(key),
        _ => None,
    }
}

/// The `certificate` source.
pub struct CertificateCredential {
    app: AppIdentity,
    path: PathBuf,
    key: ClientKey,
    http: SignInHttp,
}

impl CertificateCredential {
    pub fn new(settings: &AuthSettings) -> Result<CertificateCredential, AuthError> {
        let path = settings.certificate_path().ok_or_else(|| AuthError::Misconfigured {
            kind: Some(SourceKind::Certificate),
            problem: format!(
                "{CERTIFICATE_PATH_ENV} is not set: it names a PEM file (certificate and private \
                 key) or a .pfx file"
            ),
        })?;
        let app = AppIdentity::new(settings, SourceKind::Certificate, CERTIFICATE_PATH_ENV)?;
        let password = settings
            .env
            .get(CERTIFICATE_PASSWORD_ENV)
            .map(|p| SecretString::from(p.to_owned()));
        let key = ClientKey::load(&path, password.as_ref())?;
        Ok(CertificateCredential {
            app,
            path,
            key,
            http: SignInHttp::entra()?,
        })
    }
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("app", &self.app)
            .field("path", &self.path)
            .field("key", &self.key)
            .finish()
    }
}

impl Credential for CertificateCredential {
    fn kind(&self) -> SourceKind {
        SourceKind::Certificate
    }

    fn describe(&self) -> String {
        format!(
            "certificate ({}, thumbprint {})",
            self.app.describe(),
            self.key.thumbprint()
        )
    }

    fn acquire(&self) -> BoxFuture<'_, Result<AccessToken, AuthError>> {
        Box::pin(async move {
            let assertion = self.key.assertion(
                &self.app.client_id,
                self.app.token_url.as_str(),
                SystemTime::now(),
            )?;
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.app.client_id.as_str()),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.expose_secret()),
                ("scope", self.app.scope.as_str()),
            ];
            let answer = request_token(
                &self.http,
                SourceKind::Certificate,
                &self.app.token_url,
                &form,
            )
            .await?;
            Ok(answer.access)
        })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    use super::*;
    use crate::graph::auth::testing::{FakeServer, rsa as fixture, settings, token_answer};

    const CLIENT: &str = "2b1a7c3e-0000-4000-8000-000000000002";
    const TENANT: &str = "9c0e5f1a-0000-4000-8000-000000000001";

    fn other_certificate() -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        rcgen::CertificateParams::new(vec!["someone-else".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem()
    }

    /// PKCS#1 `RSAPrivateKey` DER: the OCTET STRING inside a PKCS#8 `PrivateKeyInfo`.
    fn pkcs1(pkcs8: &[u8]) -> Vec<u8> {
        let (0x30, info, _) = der_element(pkcs8).unwrap() else {
            panic!()
        };
        let (_, _, rest) = der_element(info).unwrap(); // version
        let (_, _, rest) = der_element(rest).unwrap(); // algorithm
        let (0x04, key, _) = der_element(rest).unwrap() else {
            panic!()
        };
        key.to_vec()
    }

    fn pem_block(label: &str, der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn pkcs12(password: &str, algorithm: p12_keystore::EncryptionAlgorithm) -> Vec<u8> {
        use p12_keystore::{
            Certificate, KeyStore, KeyStoreEntry, LocalKeyId, PrivateKey, PrivateKeyChain,
        };
        let fixture = fixture();
        let chain = PrivateKeyChain::new(
            LocalKeyId(vec![1, 2, 3, 4]),
            PrivateKey::from_der(&fixture.key.serialize_der()).unwrap(),
            [Certificate::from_der(fixture.certificate.der()).unwrap()],
        );
        let mut store = KeyStore::new();
        store.add_entry("mfactl", KeyStoreEntry::PrivateKeyChain(chain));
        store
            .writer(password)
            .encryption_algorithm(algorithm)
            .write()
            .unwrap()
    }

    fn write(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Verifies `assertion` with the certificate's public key (PS256) and checks every claim.
    fn verify(assertion: &str, audience: &str) -> serde_json::Value {
        let fixture = fixture();
        let header = jsonwebtoken::decode_header(assertion).unwrap();
        assert_eq!(header.alg, Algorithm::PS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let expected_thumbprint = URL_SAFE_NO_PAD
            .encode(digest::digest(&digest::SHA256, fixture.certificate.der()).as_ref());
        assert_eq!(
            header.x5t_s256.as_deref(),
            Some(expected_thumbprint.as_str())
        );
        assert_eq!(header.x5t, None);
        // The public key as the certificate carries it (what Entra checks against).
        let key = DecodingKey::from_rsa_der(rsa_public_key_of(fixture.certificate.der()).unwrap());
        let mut validation = Validation::new(Algorithm::PS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[CLIENT]);
        validation.sub = Some(CLIENT.to_owned());
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation)
            .unwrap()
            .claims;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let iat = claims["iat"].as_u64().unwrap();
        assert!(now.abs_diff(iat) <= 5, "iat is now");
        assert_eq!(claims["nbf"].as_u64(), Some(iat));
        let lifetime = claims["exp"].as_u64().unwrap() - iat;
        assert!(
            lifetime > 0 && lifetime <= 600,
            "exp within 10 minutes: {lifetime}"
        );
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(jti).unwrap().get_version_num(), 4);
        claims
    }

    #[test]
    fn the_assertion_is_ps256_signed_with_the_certificate_s_key_and_carries_every_claim() {
        let fixture = fixture();
        let dir = tempfile::tempdir().unwrap();
        let pem = format!(
            "{}{}",
            fixture.certificate.pem(),
            fixture.key.serialize_pem()
        );
        let path = write(&dir, "app.pem", pem.as_bytes());
        let key = ClientKey::load(&path, None).unwrap();
        let audience = format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token");
        let first = key.assertion(CLIENT, &audience, SystemTime::now()).unwrap();
        let second = key.assertion(CLIENT, &audience, SystemTime::now()).unwrap();
        let first = verify(first.expose_secret(), &audience);
        let second = verify(second.expose_secret(), &audience);
        assert_ne!(first["jti"], second["jti"], "a fresh jti per assertion");
        // The signature is what is checked: another key does not verify it.
        let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let assertion = key.assertion(CLIENT, &audience, SystemTime::now()).unwrap();
        let mut validation = Validation::new(Algorithm::PS256);
        validation.set_audience(&[&audience]);
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(
                assertion.expose_secret(),
                &DecodingKey::from_rsa_pem(stranger.public_key_pem().as_bytes()).unwrap(),
                &validation,
            )
            .is_err()
        );
        let sha1: String =
            digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, fixture.certificate.der())
                .as_ref()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
        assert_eq!(key.thumbprint(), sha1);
    }

    #[test]
    fn pkcs1_keys_and_chains_with_the_ca_first_are_read() {
        let fixture = fixture();
        let dir = tempfile::tempdir().unwrap();
        let pem = format!(
            "{}{}{}",
            other_certificate(),
            pem_block("RSA PRIVATE KEY", &pkcs1(&fixture.key.serialize_der())),
            fixture.certificate.pem()
        );
        let path = write(&dir, "chain.pem", pem.as_bytes());
        let key = ClientKey::load(&path, None).unwrap();
        let audience = "https://login.example/t/oauth2/v2.0/token";
        verify(
            key.assertion(CLIENT, audience, SystemTime::now())
                .unwrap()
                .expose_secret(),
            audience,
        );
    }

    #[test]
    fn pkcs12_files_are_read_with_their_password_even_an_empty_one() {
        use p12_keystore::EncryptionAlgorithm::{
            PbeWithHmacSha256AndAes256, PbeWithShaAnd3KeyTripleDesCbc,
        };
        let dir = tempfile::tempdir().unwrap();
        let audience = "https://login.example/t/oauth2/v2.0/token";
        for (name, password, algorithm) in [
            ("app.pfx", "correct horse", PbeWithHmacSha256AndAes256),
            ("legacy.p12", "correct horse", PbeWithShaAnd3KeyTripleDesCbc),
            ("empty.pfx", "", PbeWithHmacSha256AndAes256),
        ] {
            let path = write(&dir, name, &pkcs12(password, algorithm));
            let password = SecretString::from(password.to_owned());
            let key = ClientKey::load(&path, Some(&password)).unwrap();
            verify(
                key.assertion(CLIENT, audience, SystemTime::now())
                    .unwrap()
                    .expose_secret(),
                audience,
            );
        }
        // No password given means the empty one.
        let path = write(&dir, "nopass.pfx", &pkcs12("", PbeWithHmacSha256AndAes256));
        ClientKey::load(&path, None).unwrap();
    }

    #[test]
    fn unusable_files_say_what_is_wrong() {
        let fixture = fixture();
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("cert-only.pem", fixture.certificate.pem().into_bytes(), "holds no PRIVATE KEY"),
            ("key-only.pem", fixture.key.serialize_pem().into_bytes(), "holds no certificate"),
            (
                "mismatch.pem",
                format!("{}{}", other_certificate(), fixture.key.serialize_pem()).into_bytes(),
                "none of its certificates belongs to its private key",
            ),
            (
                "encrypted.pem",
                b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
                    .to_vec(),
                "encrypted private key",
            ),
            (
                "wrong.pfx",
                pkcs12("right", p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256),
                "a wrong AZURE_CLIENT_CERTIFICATE_PASSWORD",
            ),
        ];
        for (name, contents, says) in cases {
            let path = write(&dir, name, &contents);
            let password = SecretString::from("wrong".to_owned());
            let error = ClientKey::load(&path, Some(&password))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("certificate: "), "{name}: {error}");
            assert!(error.contains(name), "{name}: {error}");
            assert!(error.contains(says), "{name}: {error}");
            assert!(
                !error.contains("wrong\""),
                "{name}: the password is not echoed"
            );
        }
        let missing = dir.path().join("missing.pem");
        let error = ClientKey::load(&missing, None).unwrap_err().to_string();
        assert!(error.contains("cannot read it"), "{error}");
    }

    #[tokio::test]
    async fn each_acquisition_sends_a_fresh_assertion_instead_of_a_secret() {
        let fixture = fixture();
        let dir = tempfile::tempdir().unwrap();
        let pem = format!(
            "{}{}",
            fixture.certificate.pem(),
            fixture.key.serialize_pem()
        );
        let path = write(&dir, "app.pem", pem.as_bytes());
        let server = FakeServer::start(|_, _| (200, token_answer("opaque", 3599))).await;
        let path_text = path.to_str().unwrap().to_owned();
        let settings = settings(
            &[
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_CLIENT_CERTIFICATE_PATH", &path_text),
            ],
            Some(&server.url),
        );
        let credential = CertificateCredential::new(&settings).unwrap();
        assert!(
            credential
                .describe()
                .starts_with("certificate (client 2b1a…")
        );
        assert!(credential.describe().contains("thumbprint "));
        credential.acquire().await.unwrap();
        credential.acquire().await.unwrap();
        let requests = server.requests();
        let token_url = format!("{}/{TENANT}/oauth2/v2.0/token", server.url);
        let mut jtis = Vec::new();
        for request in &requests {
            assert_eq!(request.path, format!("/{TENANT}/oauth2/v2.0/token"));
            assert_eq!(
                request.form_names(),
                [
                    "client_assertion",
                    "client_assertion_type",
                    "client_id",
                    "grant_type",
                    "scope"
                ]
            );
            assert_eq!(request.form("grant_type"), Some("client_credentials"));
            assert_eq!(request.form("client_assertion_type"), Some(JWT_BEARER));
            let claims = verify(request.form("client_assertion").unwrap(), &token_url);
            jtis.push(claims["jti"].clone());
        }
        assert_eq!(jtis.len(), 2);
        assert_ne!(jtis[0], jtis[1]);
        let debug = format!("{credential:?}");
        assert!(
            !debug.contains("PRIVATE")
                && !debug.contains(&STANDARD.encode(fixture.key.serialize_der())[..40])
        );
    }
}
