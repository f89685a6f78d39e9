//! Which requests may go through a proxy. reqwest honours `HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY` and `NO_PROXY` by default, for every host: a plan against the emulator on
//! 127.0.0.1 with `HTTP_PROXY` set would hand the proxy the bearer token, a client secret and
//! every user's name in plain http. So a loopback authority (127.0.0.0/8, `::1`, `localhost`:
//! the emulator, `--emulate`, a local identity endpoint) is always reached directly, and the
//! environment's proxies, `NO_PROXY` included, apply to every other host (Graph and Entra
//! behind a corporate proxy keep working).

use url::{Host, Url};

/// Whether `url` names this machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

/// `builder`, set to reach `url`'s host directly when it is loopback (else the environment's
/// proxies stay in force).
pub fn for_host(builder: reqwest::ClientBuilder, url: &Url) -> reqwest::ClientBuilder {
    if is_loopback(url) {
        builder.no_proxy()
    } else {
        builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_authorities_are_recognised() {
        for loopback in [
            "http://127.0.0.1:8080",
            "http://127.3.2.1/",
            "http://[::1]:9/",
            "http://localhost:1",
            "http://LOCALHOST./",
            "http://graph.localhost/",
        ] {
            assert!(is_loopback(&Url::parse(loopback).unwrap()), "{loopback}");
        }
        for remote in [
            "https://graph.microsoft.com",
            "https://login.microsoftonline.com",
            "http://169.254.169.254/",
            "http://localhost.example.com/",
        ] {
            assert!(!is_loopback(&Url::parse(remote).unwrap()), "{remote}");
        }
    }
}
