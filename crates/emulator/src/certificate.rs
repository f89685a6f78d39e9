//! An app's public certificate, reduced to what verifying a client assertion takes: the RSA
//! public key, the two thumbprints Entra matches a client assertion's header against
//! (`x5t#S256`, SHA-256 of the DER; the legacy `x5t`, SHA-1) and the validity period.
//!
//! It exists because the tenant file names a certificate (a PEM file, or the PEM text itself)
//! the way an app registration holds one, and the token endpoint must check a PS256 or RS256
//! client assertion against it. A small DER reader walks the one path through the X.509
//! structure that leads to those fields instead of pulling in an X.509 crate: the emulator never
//! checks chains, extensions or names, only the key an assertion was signed with. It must not
//! grow into a certificate validator, and it never sees a private key (a PEM bundle that carries
//! one has it ignored: only the first `CERTIFICATE` block is read).

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// DER tags this reader meets on its path.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OBJECT_IDENTIFIER: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT` — the optional version in front of a certificate's serial number.
const CONTEXT_0: u8 = 0xA0;

/// rsaEncryption, 1.2.840.113549.1.1.1, as DER content bytes.
const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// A public X.509 certificate with an RSA key, as an app registration holds one.
#[derive(Clone)]
pub struct AppCertificate {
    /// What the tenant file says: a path (as written) or the PEM text.
    source: String,
    der: Vec<u8>,
    sha256: [u8; 32],
    sha1: [u8; 20],
    /// Big-endian, without a leading zero.
    modulus: Vec<u8>,
    exponent: Vec<u8>,
    /// Unix seconds.
    not_before: i64,
    not_after: i64,
}

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The file named in the tenant file could not be read.
    #[error("cannot read certificate {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not a PEM certificate, or the certificate is not one this reader follows
    /// (not DER, not X.509, not RSA).
    #[error("{0}")]
    Invalid(String),
}

impl AppCertificate {
    /// Loads `source` as the tenant file gives it: PEM text when it holds a
    /// `-----BEGIN CERTIFICATE-----` line, otherwise a path, relative to `base` when `base` is
    /// given (the tenant file's directory) and to the working directory otherwise.
    pub fn load(source: &str, base: Option<&Path>) -> Result<AppCertificate, CertificateError> {
        let pem = if source.contains(PEM_BEGIN) {
            source.to_owned()
        } else {
            let path = match base {
                Some(base) => base.join(source),
                None => PathBuf::from(source),
            };
            std::fs::read_to_string(&path).map_err(|source| CertificateError::Read {
                path: path.clone(),
                source,
            })?
        };
        let der = pem_certificate(&pem)?;
        AppCertificate::from_der(source.to_owned(), der)
    }

    fn from_der(source: String, der: Vec<u8>) -> Result<AppCertificate, CertificateError> {
        let fields = read_certificate(&der).map_err(|why| {
            CertificateError::Invalid(format!("not an X.509 certificate with an RSA key: {why}"))
        })?;
        let sha256 = digest_of(&digest::SHA256, &der);
        let sha1 = digest_of(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        Ok(AppCertificate {
            source,
            sha256: sha256.try_into().unwrap_or([0; 32]),
            sha1: sha1.try_into().unwrap_or([0; 20]),
            modulus: fields.modulus,
            exponent: fields.exponent,
            not_before: fields.not_before,
            not_after: fields.not_after,
            der,
        })
    }

    /// The path or PEM text the tenant file gave.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The certificate's DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// `x5t#S256`: base64url (unpadded) of the SHA-256 of the DER.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha256)
    }

    /// `x5t`: base64url (unpadded) of the SHA-1 of the DER, the legacy header.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha1)
    }

    /// The SHA-1 thumbprint in hex, as Entra's messages and portal show it.
    pub fn thumbprint_hex(&self) -> String {
        self.sha1.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// The RSA modulus and public exponent, big-endian.
    pub(crate) fn rsa_components(&self) -> (&[u8], &[u8]) {
        (&self.modulus, &self.exponent)
    }

    /// Whether the certificate is valid at `now` (Unix seconds).
    pub(crate) fn is_valid_at(&self, now: i64) -> bool {
        (self.not_before..=self.not_after).contains(&now)
    }

    /// The validity period as Entra's messages show it.
    pub(crate) fn validity(&self) -> String {
        let show = |secs: i64| {
            jiff::Timestamp::from_second(secs)
                .map(|t| t.strftime("%m/%d/%Y %H:%M:%S").to_string())
                .unwrap_or_else(|_| secs.to_string())
        };
        format!(
            "Start={}, End={}",
            show(self.not_before),
            show(self.not_after)
        )
    }
}

impl PartialEq for AppCertificate {
    fn eq(&self, other: &AppCertificate) -> bool {
        self.der == other.der
    }
}

impl fmt::Debug for AppCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The source may be a whole PEM block: show where it came from, not the text.
        let source = if self.source.contains(PEM_BEGIN) {
            "<inline PEM>"
        } else {
            &self.source
        };
        f.debug_struct("AppCertificate")
            .field("source", &source)
            .field("thumbprint", &self.thumbprint_hex())
            .finish()
    }
}

/// Written back as the tenant file had it (the path, or the PEM text).
impl serde::Serialize for AppCertificate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// Read outside the tenant-file loader (e.g. from `/_emulator/tenant`'s JSON): a relative path
/// is taken from the working directory, since there is no tenant file to be relative to.
impl<'de> serde::Deserialize<'de> for AppCertificate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        AppCertificate::load(&source, None).map_err(serde::de::Error::custom)
    }
}

fn digest_of(algorithm: &'static digest::Algorithm, data: &[u8]) -> Vec<u8> {
    digest::digest(algorithm, data).as_ref().to_vec()
}

/// The DER of the first `CERTIFICATE` block of a PEM text.
fn pem_certificate(text: &str) -> Result<Vec<u8>, CertificateError> {
    let invalid = |why: &str| CertificateError::Invalid(why.to_owned());
    let Some((_, after_begin)) = text.split_once(PEM_BEGIN) else {
        return Err(invalid(
            "no '-----BEGIN CERTIFICATE-----' block: give the app's public certificate in PEM",
        ));
    };
    let Some((body, _)) = after_begin.split_once(PEM_END) else {
        return Err(invalid(
            "the CERTIFICATE block has no '-----END CERTIFICATE-----' line",
        ));
    };
    let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(base64)
        .map_err(|err| invalid(&format!("the CERTIFICATE block is not base64 ({err})")))
}

/// The fields the emulator reads from a certificate.
struct CertificateFields {
    modulus: Vec<u8>,
    exponent: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

/// Walks `Certificate → tbsCertificate → (version, serial, signature, issuer, validity, subject,
/// subjectPublicKeyInfo)` and the RSA key inside the last.
fn read_certificate(der: &[u8]) -> Result<CertificateFields, String> {
    let (certificate, _) = element(der, SEQUENCE, "Certificate")?;
    let (tbs, _) = element(certificate, SEQUENCE, "tbsCertificate")?;
    let mut rest = tbs;
    if rest.first() == Some(&CONTEXT_0) {
        rest = tlv(rest)?.2;
    }
    let (_, rest) = element(rest, INTEGER, "serialNumber")?;
    let (_, rest) = element(rest, SEQUENCE, "signature")?;
    let (_, rest) = element(rest, SEQUENCE, "issuer")?;
    let (validity, rest) = element(rest, SEQUENCE, "validity")?;
    let (_, rest) = element(rest, SEQUENCE, "subject")?;
    let (spki, _) = element(rest, SEQUENCE, "subjectPublicKeyInfo")?;

    let (not_before, after) = time(validity, "notBefore")?;
    let (not_after, _) = time(after, "notAfter")?;

    let (algorithm, rest) = element(spki, SEQUENCE, "algorithm")?;
    let (oid, _) = element(algorithm, OBJECT_IDENTIFIER, "algorithm")?;
    if oid != RSA_ENCRYPTION {
        return Err("the public key is not RSA (Entra's certificate credentials are RSA)".into());
    }
    let (bits, _) = element(rest, BIT_STRING, "subjectPublicKey")?;
    // A BIT STRING starts with the count of unused bits, 0 for a DER-encoded key.
    let Some((0, key)) = bits.split_first() else {
        return Err("subjectPublicKey has unused bits".into());
    };
    let (rsa_key, _) = element(key, SEQUENCE, "RSAPublicKey")?;
    let (modulus, rest) = element(rsa_key, INTEGER, "modulus")?;
    let (exponent, _) = element(rest, INTEGER, "publicExponent")?;
    Ok(CertificateFields {
        modulus: unsigned(modulus),
        exponent: unsigned(exponent),
        not_before,
        not_after,
    })
}

/// One TLV with the expected tag: (content, what follows).
fn element<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let (found, content, rest) = tlv(input)?;
    if found != tag {
        return Err(format!(
            "{what}: expected DER tag 0x{tag:02X}, found 0x{found:02X}"
        ));
    }
    Ok((content, rest))
}

/// Splits one DER tag-length-value off `input`: (tag, content, rest). Definite lengths only,
/// as DER requires; lengths over 4 bytes cannot fit a certificate and are refused.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let truncated = || "truncated DER".to_owned();
    let (&tag, rest) = input.split_first().ok_or_else(truncated)?;
    let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return Err("unsupported DER length".into());
        }
        let bytes = rest.get(..count).ok_or_else(truncated)?;
        let length = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return Err(truncated());
    }
    let (content, rest) = rest.split_at(length);
    Ok((tag, content, rest))
}

/// A DER INTEGER's content as an unsigned big-endian number (the sign byte dropped).
fn unsigned(content: &[u8]) -> Vec<u8> {
    let start = content
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(content.len());
    content[start..].to_vec()
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as
/// Unix seconds, and what follows it.
fn time<'a>(input: &'a [u8], what: &str) -> Result<(i64, &'a [u8]), String> {
    let (tag, content, rest) = tlv(input)?;
    let text = std::str::from_utf8(content).map_err(|_| format!("{what} is not text"))?;
    let bad = || format!("{what} '{text}' is not a UTC time");
    let digits = text.strip_suffix('Z').ok_or_else(bad)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let full = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let year: u32 = digits[..2].parse().map_err(|_| bad())?;
            let century = if year >= 50 { "19" } else { "20" };
            format!("{century}{digits}")
        }
        (GENERALIZED_TIME, 14) => digits.to_owned(),
        _ => return Err(bad()),
    };
    let field = |range: std::ops::Range<usize>| full[range].parse::<i16>().map_err(|_| bad());
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    let civil = jiff::civil::DateTime::new(
        year,
        i8::try_from(month).map_err(|_| bad())?,
        i8::try_from(day).map_err(|_| bad())?,
        i8::try_from(hour).map_err(|_| bad())?,
        i8::try_from(minute).map_err(|_| bad())?,
        i8::try_from(second).map_err(|_| bad())?,
        0,
    )
    .map_err(|_| bad())?;
    let seconds = civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|_| bad())?
        .timestamp()
        .as_second();
    Ok((seconds, rest))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed RSA certificate and its PKCS#8 private key, made now (never committed).
    pub(crate) fn rsa_certificate(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        let cert = params.self_signed(&key).expect("self-signed certificate");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn reads_the_key_thumbprints_and_validity_of_an_rsa_certificate() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["mfactl-test".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2021, 3, 4);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let cert = params.self_signed(&key).unwrap();
        let loaded = AppCertificate::load(&cert.pem(), None).unwrap();

        assert_eq!(loaded.der(), cert.der().as_ref());
        let sha256 = digest::digest(&digest::SHA256, cert.der());
        assert_eq!(loaded.x5t_s256(), URL_SAFE_NO_PAD.encode(sha256.as_ref()));
        assert_eq!(loaded.thumbprint_hex().len(), 40);
        // 2021-03-04T00:00:00Z and 2049-12-31T00:00:00Z (UTCTime, the year 49 is 2049).
        assert_eq!(
            (loaded.not_before, loaded.not_after),
            (1_614_816_000, 2_524_521_600)
        );
        assert!(loaded.is_valid_at(1_700_000_000));
        assert!(!loaded.is_valid_at(1_600_000_000));

        // The modulus is the 2048-bit one rcgen's key holds: 256 bytes, top bit set.
        let (modulus, exponent) = loaded.rsa_components();
        assert_eq!(modulus.len(), 256);
        assert!(modulus[0] & 0x80 != 0);
        assert_eq!(exponent, [0x01, 0x00, 0x01]);
    }

    #[test]
    fn refuses_what_is_not_an_rsa_certificate_with_the_reason() {
        let err = AppCertificate::load("-----BEGIN CERTIFICATE-----\nAAAA\n", None).unwrap_err();
        assert!(err.to_string().contains("END CERTIFICATE"), "{err}");
        let err = AppCertificate::load(
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
            None,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("not an X.509 certificate"),
            "{err}"
        );

        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["ec".into()])
            .unwrap()
            .self_signed(&ec)
            .unwrap();
        let err = AppCertificate::load(&cert.pem(), None).unwrap_err();
        assert!(err.to_string().contains("not RSA"), "{err}");

        let err = AppCertificate::load("no-such-dir/app.pem", Some(Path::new("/nonexistent")))
            .unwrap_err();
        assert!(
            matches!(&err, CertificateError::Read { path, .. }
                if path == Path::new("/nonexistent/no-such-dir/app.pem")),
            "{err}"
        );
    }

    #[test]
    fn debug_shows_where_a_certificate_came_from_not_its_text() {
        let (pem, _) = rsa_certificate("debug");
        let text = format!("{:?}", AppCertificate::load(&pem, None).unwrap());
        assert!(
            text.contains("<inline PEM>") && !text.contains("BEGIN"),
            "{text}"
        );
    }
}
