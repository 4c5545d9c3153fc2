//! The quota-alert settings (`crate::alerts` delivers them): the webhook, its secret, the
//! thresholds and the retry base, checked when the settings are read.

use std::time::Duration;

/// What `config.toml` / the environment say about alerts; `None` in `Settings` when no URL.
#[derive(Clone)]
pub struct AlertSettings {
    pub url: String,
    pub secret: String,
    /// Percent of the monthly limit, ascending, each 1 to 100.
    pub thresholds: Vec<u32>,
    /// The first retry's delay; each later one doubles, up to an hour.
    pub retry_base: Duration,
    /// Extra trusted roots for an `https://` receiver (PEM), beside the system's: a private CA.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for AlertSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSettings")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("thresholds", &self.thresholds)
            .field("retry_base", &self.retry_base)
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| p.len()))
            .finish()
    }
}

pub const DEFAULT_THRESHOLDS: [u32; 2] = [80, 100];
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(2);
/// Parses `80,100` (or a TOML list): whole percents from 1 to 100, sorted, without repeats.
pub(super) fn parse_thresholds(values: &[i64]) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for &v in values {
        match u32::try_from(v) {
            Ok(p) if (1..=100).contains(&p) => out.push(p),
            _ => return Err(format!("alert thresholds are percents from 1 to 100, got {v}")),
        }
    }
    if out.is_empty() {
        return Err("alert_thresholds needs at least one percent".into());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Checks a webhook URL: `https://` (the receiver's certificate checked against the system's
/// roots and the optional CA file) or plain `http://`.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    match url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) {
        Some(rest) if !rest.is_empty() && reqwest::Url::parse(url).is_ok() => Ok(()),
        _ => Err(format!("webhook URL {url:?} is not an https:// or http:// URL")),
    }
}

/// Checks a CA file's contents: at least one PEM certificate.
pub(super) fn check_ca(pem: &[u8]) -> Result<(), String> {
    match reqwest::Certificate::from_pem_bundle(pem) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        _ => Err("expected one or more PEM certificates".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_sorted_percents() {
        assert_eq!(parse_thresholds(&[100, 80, 80]).unwrap(), vec![80, 100]);
        for bad in [&[0][..], &[101], &[], &[-5]] {
            assert!(parse_thresholds(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_plain_http_urls() {
        assert!(check_url("http://127.0.0.1:9000/hooks").is_ok());
        assert!(check_url("https://example.com/hooks").is_ok());
        assert!(check_ca(b"not a certificate").is_err());
        assert!(check_url("ftp://x").is_err() && check_url("http://").is_err());
    }
}
