//! Settings: command-line flag, then environment variable, then `$OMNIMEMORY_HOME/config.toml`,
//! then the built-in default, in that order of precedence.
//!
//! Parsed once at start into plain values; nothing downstream reads the environment.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod alerts;

pub use alerts::AlertSettings;

use crate::keys::{Caller, KeyRecord, LimitOverride, Tier};
use crate::policy::{KeyPolicy, TierLimits};

pub const DEFAULT_PORT: u16 = 8001;
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 60;
/// `serve` refuses a shorter admin key: it guards key creation for every tier.
pub const MIN_ADMIN_KEY_CHARS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot find a home directory; set OMNIMEMORY_HOME")]
    NoHome,
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{name}={value:?} is not valid: {message}")]
    Env { name: &'static str, value: String, message: String },
}

/// What the request path does while Redis, which holds the shared limits, is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Admit without limits while Redis is unreachable.
    Open,
    /// Refuse with 503 while Redis is unreachable.
    Closed,
}

impl std::str::FromStr for FailureMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(FailureMode::Open),
            "closed" => Ok(FailureMode::Closed),
            other => Err(format!("expected open or closed, got {other:?}")),
        }
    }
}

/// The admin secret. Compared in constant time; `Debug` never shows it.
#[derive(Clone)]
pub struct AdminKey(String);

impl AdminKey {
    pub fn new(secret: String) -> Option<AdminKey> {
        (!secret.is_empty()).then_some(AdminKey(secret))
    }

    /// At least [`MIN_ADMIN_KEY_CHARS`] characters.
    pub fn is_long_enough(&self) -> bool {
        self.0.chars().count() >= MIN_ADMIN_KEY_CHARS
    }

    /// Constant-time in the candidate's content (length differences leak only the length).
    pub fn matches(&self, candidate: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminKey(<redacted>)")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<IpAddr>,
    port: Option<u16>,
    admin_key: Option<String>,
    database_url: Option<String>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    redis_rate_failure: Option<FailureMode>,
    redis_quota_failure: Option<FailureMode>,
    max_body_bytes: Option<usize>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    #[serde(default)]
    tiers: BTreeMap<Tier, LimitOverride>,
    /// Present: requests without a key are served, within these limits (free tier's by default).
    anonymous: Option<LimitOverride>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    alert_thresholds: Option<Vec<i64>>,
    webhook_retry_base_ms: Option<u64>,
    webhook_ca_file: Option<std::path::PathBuf>,
}

/// Flags given on the command line; `None` when absent.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub host: Option<IpAddr>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub home: PathBuf,
    pub addr: SocketAddr,
    pub admin_key: Option<AdminKey>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    /// Namespace of this deployment's keys in Redis.
    pub redis_prefix: String,
    /// While Redis is unreachable: rate limits fail open by default, the quota closed.
    pub redis_rate_failure: FailureMode,
    pub redis_quota_failure: FailureMode,
    pub max_body_bytes: usize,
    /// Open connections at most; `None` = the default, lowered to fit the descriptor limit.
    pub max_connections: Option<usize>,
    /// A request's headers must arrive within this, from the connection's start or the end of
    /// the previous response (so it is also the idle keep-alive timeout).
    pub header_timeout: std::time::Duration,
    /// A request's body must arrive within this once its handler starts reading it.
    pub body_timeout: std::time::Duration,
    pub tiers: BTreeMap<Tier, TierLimits>,
    /// `Some`: anonymous access is on, and all keyless traffic shares these limits.
    pub anonymous: Option<TierLimits>,
    /// `Some`: quota alerts go to this webhook.
    pub alerts: Option<AlertSettings>,
}

impl Settings {
    /// A key's effective limits: its tier's as configured, with the key's own override applied;
    /// for anonymous traffic, the configured anonymous limits. The one place a policy is built.
    pub fn policy_for(&self, key: &KeyRecord) -> KeyPolicy {
        if key.caller() == Caller::Anonymous {
            let limits = self.anonymous.unwrap_or_else(|| TierLimits::default_for(Tier::Free));
            return KeyPolicy::new(key.tier, limits);
        }
        let tier = self.tiers.get(&key.tier).copied().unwrap_or_else(|| TierLimits::default_for(key.tier));
        KeyPolicy::new(key.tier, tier.with_override(&key.limits))
    }

    /// Reads the process environment and the config file.
    pub fn load(flags: &Overrides) -> Result<Settings, ConfigError> {
        Self::load_from(flags, |name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn load_from(flags: &Overrides, env: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let home = match env("OMNIMEMORY_HOME") {
            Some(h) => PathBuf::from(h),
            None => std::env::home_dir().ok_or(ConfigError::NoHome)?.join(".omnimemory"),
        };
        let file = read_file_config(&home.join("config.toml"))?;

        let env_addr = match env("OMNIMEMORY_ADDR") {
            Some(value) => Some(value.parse::<SocketAddr>().map_err(|e| ConfigError::Env {
                name: "OMNIMEMORY_ADDR",
                value: value.clone(),
                message: e.to_string(),
            })?),
            None => None,
        };
        let host = flags.host.or(env_addr.map(|a| a.ip())).or(file.host).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let port = flags.port.or(env_addr.map(|a| a.port())).or(file.port).unwrap_or(DEFAULT_PORT);

        let max_body_bytes = match env("OMNIMEMORY_MAX_BODY_BYTES") {
            Some(value) => value.parse().map_err(|_| ConfigError::Env {
                name: "OMNIMEMORY_MAX_BODY_BYTES",
                value: value.clone(),
                message: "expected a number of bytes".into(),
            })?,
            None => file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        };

        let max_connections =
            number(&env, "OMNIMEMORY_MAX_CONNECTIONS", "a number of connections")?.or(file.max_connections);
        let seconds = |name, from_file: Option<u64>, default| -> Result<std::time::Duration, ConfigError> {
            let secs = number(&env, name, "a whole number of seconds, at least 1")?.or(from_file).unwrap_or(default);
            if secs == 0 {
                return Err(ConfigError::Env { name, value: "0".into(), message: "must be at least 1".into() });
            }
            Ok(std::time::Duration::from_secs(secs))
        };
        let header_timeout =
            seconds("OMNIMEMORY_HEADER_TIMEOUT_SECS", file.header_timeout_secs, DEFAULT_HEADER_TIMEOUT_SECS)?;
        let body_timeout = seconds("OMNIMEMORY_BODY_TIMEOUT_SECS", file.body_timeout_secs, DEFAULT_BODY_TIMEOUT_SECS)?;

        let tiers: BTreeMap<Tier, TierLimits> = Tier::ALL
            .into_iter()
            .map(|tier| {
                let limits = TierLimits::default_for(tier);
                (tier, file.tiers.get(&tier).map_or(limits, |o| limits.with_override(o)))
            })
            .collect();
        let anonymous_on = match env("OMNIMEMORY_ANONYMOUS").as_deref() {
            Some("1" | "true" | "on") => true,
            Some("0" | "false" | "off") => false,
            Some(other) => {
                return Err(ConfigError::Env {
                    name: "OMNIMEMORY_ANONYMOUS",
                    value: other.to_string(),
                    message: "expected on or off".into(),
                });
            }
            None => file.anonymous.is_some(),
        };
        let anonymous = anonymous_on.then(|| {
            let free = tiers[&Tier::Free];
            file.anonymous.as_ref().map_or(free, |o| free.with_override(o))
        });

        let alerts = alert_settings(&env, &file)?;
        Ok(Settings {
            alerts,
            home,
            addr: SocketAddr::new(host, port),
            admin_key: env("OMNIMEMORY_ADMIN_KEY").or(file.admin_key).and_then(AdminKey::new),
            database_url: env("OMNIMEMORY_DATABASE_URL").or(file.database_url),
            redis_url: env("OMNIMEMORY_REDIS_URL").or(file.redis_url),
            redis_prefix: env("OMNIMEMORY_REDIS_PREFIX").or(file.redis_prefix).unwrap_or_else(|| "omnimemory".into()),
            redis_rate_failure: failure_mode(&env, "OMNIMEMORY_REDIS_RATE_FAILURE")?
                .or(file.redis_rate_failure)
                .unwrap_or(FailureMode::Open),
            redis_quota_failure: failure_mode(&env, "OMNIMEMORY_REDIS_QUOTA_FAILURE")?
                .or(file.redis_quota_failure)
                .unwrap_or(FailureMode::Closed),
            max_body_bytes,
            max_connections,
            header_timeout,
            body_timeout,
            tiers,
            anonymous,
        })
    }
}

/// Quota alerts: on when a webhook URL is set, which then needs a secret to sign with.
fn alert_settings(
    env: &impl Fn(&str) -> Option<String>,
    file: &FileConfig,
) -> Result<Option<AlertSettings>, ConfigError> {
    let invalid =
        |name: &'static str, value: &str, message: String| ConfigError::Env { name, value: value.to_string(), message };
    let Some(url) = env("OMNIMEMORY_WEBHOOK_URL").or(file.webhook_url.clone()) else { return Ok(None) };
    alerts::check_url(&url).map_err(|m| invalid("OMNIMEMORY_WEBHOOK_URL", &url, m))?;
    let secret = env("OMNIMEMORY_WEBHOOK_SECRET").or(file.webhook_secret.clone()).ok_or_else(|| {
        invalid("OMNIMEMORY_WEBHOOK_SECRET", "", "a webhook URL needs a secret to sign its alerts with".into())
    })?;
    let thresholds = match env("OMNIMEMORY_ALERT_THRESHOLDS") {
        Some(raw) => {
            let values: Result<Vec<i64>, _> = raw.split(',').map(|v| v.trim().parse::<i64>()).collect();
            let values = values
                .map_err(|_| invalid("OMNIMEMORY_ALERT_THRESHOLDS", &raw, "expected percents like 80,100".into()))?;
            alerts::parse_thresholds(&values).map_err(|m| invalid("OMNIMEMORY_ALERT_THRESHOLDS", &raw, m))?
        }
        None => match &file.alert_thresholds {
            Some(values) => {
                alerts::parse_thresholds(values).map_err(|m| invalid("alert_thresholds", &format!("{values:?}"), m))?
            }
            None => alerts::DEFAULT_THRESHOLDS.to_vec(),
        },
    };
    let retry_base = number(env, "OMNIMEMORY_WEBHOOK_RETRY_BASE_MS", "a number of milliseconds")?
        .or(file.webhook_retry_base_ms)
        .map_or(alerts::DEFAULT_RETRY_BASE, |ms: u64| std::time::Duration::from_millis(ms.max(1)));
    let ca_pem = match env("OMNIMEMORY_WEBHOOK_CA_FILE").map(std::path::PathBuf::from).or(file.webhook_ca_file.clone())
    {
        Some(path) => {
            let shown = path.display().to_string();
            let pem = std::fs::read(&path)
                .map_err(|e| invalid("OMNIMEMORY_WEBHOOK_CA_FILE", &shown, format!("cannot read it: {e}")))?;
            alerts::check_ca(&pem).map_err(|m| invalid("OMNIMEMORY_WEBHOOK_CA_FILE", &shown, m))?;
            Some(pem)
        }
        None => None,
    };
    Ok(Some(alerts::AlertSettings { url, secret, thresholds, retry_base, ca_pem }))
}

/// A numeric variable, if set; `expected` says what it should be when it does not parse.
fn number<T: std::str::FromStr>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &str,
) -> Result<Option<T>, ConfigError> {
    match env(name) {
        Some(value) => value.trim().parse().map(Some).map_err(|_| ConfigError::Env {
            name,
            value: value.clone(),
            message: format!("expected {expected}"),
        }),
        None => Ok(None),
    }
}

fn failure_mode(env: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<Option<FailureMode>, ConfigError> {
    match env(name) {
        Some(value) => {
            value.parse().map(Some).map_err(|message| ConfigError::Env { name, value: value.clone(), message })
        }
        None => Ok(None),
    }
}

fn read_file_config(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(source) => {
            return Err(ConfigError::Read { path: path.to_path_buf(), source });
        }
    };
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn precedence_is_flag_then_env_then_file_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_string_lossy().to_string();
        std::fs::write(
            dir.path().join("config.toml"),
            "port = 9000\nmax_body_bytes = 2048\n[tiers.free]\nburst = 3\nmonthly_tokens = 2592000\n",
        )
        .unwrap();

        let only_file =
            Settings::load_from(&Overrides::default(), env_of(&[("OMNIMEMORY_HOME", home.clone())])).unwrap();
        assert_eq!(only_file.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(only_file.max_body_bytes, 2048);
        let free = only_file.tiers[&Tier::Free];
        assert_eq!((free.burst, free.monthly_tokens, free.tokens_per_second), (3, Some(2_592_000), Some(1.0)));
        assert_eq!(only_file.tiers[&Tier::Pro], TierLimits::default_for(Tier::Pro));
        assert!(only_file.admin_key.is_none());

        let env = env_of(&[
            ("OMNIMEMORY_HOME", home.clone()),
            ("OMNIMEMORY_ADDR", "0.0.0.0:7000".into()),
            ("OMNIMEMORY_ADMIN_KEY", "s3cret".into()),
        ]);
        let with_env = Settings::load_from(&Overrides::default(), &env).unwrap();
        assert_eq!(with_env.addr, "0.0.0.0:7000".parse().unwrap());
        assert!(with_env.admin_key.unwrap().matches("s3cret"));

        let flags = Overrides { host: None, port: Some(7100) };
        assert_eq!(Settings::load_from(&flags, &env).unwrap().addr, "0.0.0.0:7100".parse().unwrap());
    }

    #[test]
    fn a_broken_config_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "[tiers.gold]\nburst = 1\n").unwrap();
        let home = dir.path().to_string_lossy().to_string();
        let err = Settings::load_from(&Overrides::default(), env_of(&[("OMNIMEMORY_HOME", home)])).unwrap_err();
        assert!(err.to_string().contains("config.toml"), "{err}");
    }

    #[test]
    fn admin_key_debug_is_redacted() {
        let key = AdminKey::new("hunter2".into()).unwrap();
        assert!(!format!("{key:?}").contains("hunter2"));
        assert!(!key.matches("hunter3"));
        assert!(!key.matches("hunter"));
    }

    #[test]
    fn quota_alerts_need_an_https_or_http_url_and_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_string_lossy().to_string();
        let load = |pairs: &[(&str, &str)]| {
            let mut all = vec![("OMNIMEMORY_HOME", home.clone())];
            all.extend(pairs.iter().map(|(k, v)| (*k, v.to_string())));
            Settings::load_from(&Overrides::default(), env_of(&all))
        };
        assert!(load(&[]).unwrap().alerts.is_none());
        let url = ("OMNIMEMORY_WEBHOOK_URL", "http://127.0.0.1:9/hooks");
        let on = load(&[url, ("OMNIMEMORY_WEBHOOK_SECRET", "hunter2")]).unwrap().alerts.unwrap();
        assert_eq!((on.thresholds, on.retry_base), (vec![80, 100], alerts::DEFAULT_RETRY_BASE));
        assert!(!format!("{:?}", load(&[url, ("OMNIMEMORY_WEBHOOK_SECRET", "hunter2")]).unwrap()).contains("hunter2"));
        assert!(load(&[url]).unwrap_err().to_string().contains("needs a secret"));
        let https = [("OMNIMEMORY_WEBHOOK_URL", "https://example.com/h"), ("OMNIMEMORY_WEBHOOK_SECRET", "s")];
        assert_eq!(load(&https).unwrap().alerts.map(|a| a.url), Some("https://example.com/h".to_string()));
        let ftp = [("OMNIMEMORY_WEBHOOK_URL", "ftp://example.com/h"), ("OMNIMEMORY_WEBHOOK_SECRET", "s")];
        assert!(load(&ftp).unwrap_err().to_string().contains("https://"));
        let odd = [url, ("OMNIMEMORY_WEBHOOK_SECRET", "s"), ("OMNIMEMORY_ALERT_THRESHOLDS", "90, 50,90")];
        assert_eq!(load(&odd).unwrap().alerts.unwrap().thresholds, vec![50, 90]);
        let bad = [url, ("OMNIMEMORY_WEBHOOK_SECRET", "s"), ("OMNIMEMORY_ALERT_THRESHOLDS", "120")];
        assert!(load(&bad).is_err());
        std::fs::write(
            dir.path().join("config.toml"),
            "webhook_url = \"http://h:1/x\"\nwebhook_secret = \"s\"\nalert_thresholds = [75]\nwebhook_retry_base_ms = 10\n",
        )
        .unwrap();
        let from_file = load(&[]).unwrap().alerts.unwrap();
        assert_eq!(
            (from_file.url.as_str(), from_file.thresholds, from_file.retry_base.as_millis()),
            ("http://h:1/x", vec![75], 10)
        );
    }
}
