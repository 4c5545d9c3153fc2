//! API keys: the `om_<tier>_<secret>` format, generation from the OS-seeded CSPRNG, and hashing.
//!
//! A full key exists only in three places: the creator's output (shown once), the client's
//! `Authorization` header, and the short-lived [`ApiKey`] value parsed from it. Everything that
//! is stored or logged names a key by its [`KeyHash`] or its public id (`om_pro_AbCdEfGh`).
//! `ApiKey`'s `Debug` redacts the secret, so `{:?}` in a log line cannot leak it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Characters of the secret that form the public id: 8 base64url chars = 48 of 256 bits.
const PUBLIC_SECRET_CHARS: usize = 8;
/// 32 random bytes encode to 43 base64url characters without padding.
const SECRET_CHARS: usize = 43;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Pro,
    Enterprise,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Free, Tier::Pro, Tier::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier '{0}' (expected free, pro or enterprise)")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "free" => Ok(Tier::Free),
            "pro" => Ok(Tier::Pro),
            "enterprise" => Ok(Tier::Enterprise),
            // Echoed in the refusal, so only the first characters of a long one.
            other => Err(UnknownTier(other.chars().take(32).collect())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an OmniMemory API key (expected om_<tier>_<43 base64url characters>)")]
pub struct MalformedKey;

/// A full API key, secret included. Parse it at the edge; never store or log it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    full: String,
    tier: Tier,
}

impl ApiKey {
    /// A new key for `tier` with 256 bits from the thread-local CSPRNG (ChaCha, OS-seeded).
    pub fn generate(tier: Tier) -> ApiKey {
        let bytes: [u8; 32] = rand::random();
        let full = format!("om_{}_{}", tier.as_str(), URL_SAFE_NO_PAD.encode(bytes));
        ApiKey { full, tier }
    }

    pub fn parse(s: &str) -> Result<ApiKey, MalformedKey> {
        let rest = s.strip_prefix("om_").ok_or(MalformedKey)?;
        let (tier, secret) = rest.split_once('_').ok_or(MalformedKey)?;
        let tier: Tier = tier.parse().map_err(|_| MalformedKey)?;
        let well_formed =
            secret.len() == SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(MalformedKey);
        }
        Ok(ApiKey { full: s.to_string(), tier })
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.full.as_bytes()).into())
    }

    /// `om_<tier>_` plus the first 8 characters of the secret: safe to store, log and show.
    pub fn public_id(&self) -> String {
        let prefix_len = "om_".len() + self.tier.as_str().len() + 1 + PUBLIC_SECRET_CHARS;
        self.full[..prefix_len].to_string()
    }

    /// A new secret for the key whose public id is `public_id` (a rotation): the same public
    /// id, so usage rows, logs and the admin commands keep naming the key as before, followed by
    /// 35 fresh characters from the CSPRNG (210 bits; the 8 public characters were never secret).
    pub fn rotate(public_id: &str) -> Result<ApiKey, MalformedKey> {
        if !is_public_id(public_id) {
            return Err(MalformedKey);
        }
        let bytes: [u8; 27] = rand::random();
        let fresh = URL_SAFE_NO_PAD.encode(bytes);
        ApiKey::parse(&format!("{public_id}{}", &fresh[..SECRET_CHARS - PUBLIC_SECRET_CHARS]))
    }

    /// The secret itself, for the one moment it is shown to its creator.
    pub fn expose_secret(&self) -> &str {
        &self.full
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.public_id())
    }
}

/// SHA-256 of the full key. The key carries 256 random bits, so a fast hash is enough:
/// there is nothing to brute-force, and lookups stay one indexed query.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// Whether `s` looks like a public id (`om_pro_AbCdEfGh`) rather than a full key.
pub fn is_public_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("om_") else {
        return false;
    };
    let Some((tier, head)) = rest.split_once('_') else {
        return false;
    };
    tier.parse::<Tier>().is_ok()
        && head.len() == PUBLIC_SECRET_CHARS
        && head.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A key's id in storage (its row id): internal, never shown (the public id is). Anonymous
/// traffic, when the operator allows it, is accounted under [`KeyId::ANONYMOUS`], which no
/// stored key has; ask [`KeyId::caller`] which of the two an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(i64);

impl KeyId {
    /// The account of keyless requests (storage ids start at 1).
    pub const ANONYMOUS: KeyId = KeyId(0);

    /// The id of storage's row `row`.
    pub fn from_row(row: i64) -> KeyId {
        KeyId(row)
    }

    /// The row id, as storage keeps it.
    pub fn row(self) -> i64 {
        self.0
    }

    /// Whom requests accounted under this id come from.
    pub fn caller(self) -> Caller {
        if self == KeyId::ANONYMOUS { Caller::Anonymous } else { Caller::Key(self) }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whom a request is accounted to: a stored key, or keyless traffic (anonymous access on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Key(KeyId),
    Anonymous,
}

/// A stored key, as the service and the admin CLI see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyRecord {
    /// Storage's row id: internal, never shown.
    #[serde(skip)]
    pub id: KeyId,
    /// Shown as `key_id`, like everywhere else in the API and the CLI.
    #[serde(rename = "key_id")]
    pub public_id: String,
    pub user_id: String,
    pub tier: Tier,
    pub email: Option<String>,
    pub company: Option<String>,
    pub active: bool,
    pub created_at: jiff::Timestamp,
    pub expires_at: Option<jiff::Timestamp>,
    /// The key's own limits, each `None` where the tier's apply.
    pub limits: LimitOverride,
    /// The key's last successful use as storage knows it (written at most once a minute per
    /// key, so up to a minute behind), and the model that request named.
    pub last_used_at: Option<jiff::Timestamp>,
    pub last_used_model: Option<String>,
}

/// Limits that win over a tier's, each `None` where the tier's apply: a key's own (stored with
/// it), or an operator's for a tier or for anonymous traffic (`config.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverride {
    pub monthly_tokens: Option<u64>,
    pub requests_per_second: Option<f64>,
    pub burst: Option<u32>,
}

/// A key to be inserted; the hash is all that is kept of the secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub hash: KeyHash,
    pub public_id: String,
    pub user_id: String,
    pub tier: Tier,
    pub email: Option<String>,
    pub company: Option<String>,
    pub created_at: jiff::Timestamp,
    pub expires_at: Option<jiff::Timestamp>,
    pub limits: LimitOverride,
}

impl KeyRecord {
    /// The stand-in record of keyless requests when the operator turned anonymous access on.
    pub fn anonymous(now: jiff::Timestamp) -> KeyRecord {
        KeyRecord {
            id: KeyId::ANONYMOUS,
            public_id: "anonymous".into(),
            user_id: "anonymous".into(),
            tier: Tier::Free,
            email: None,
            company: None,
            active: true,
            created_at: now,
            expires_at: None,
            limits: LimitOverride::default(),
            last_used_at: None,
            last_used_model: None,
        }
    }

    /// Whom this record's requests are accounted to.
    pub fn caller(&self) -> Caller {
        self.id.caller()
    }

    pub fn is_expired(&self, now: jiff::Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// `deactivated`, `expired` or `active`, as the admin CLI and endpoints show it.
    pub fn status(&self, now: jiff::Timestamp) -> &'static str {
        if !self.active {
            "deactivated"
        } else if self.is_expired(now) {
            "expired"
        } else {
            "active"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape_and_parse_back() {
        for tier in Tier::ALL {
            let key = ApiKey::generate(tier);
            let s = key.expose_secret();
            let secret = s.strip_prefix(&format!("om_{tier}_")).unwrap();
            assert_eq!(secret.len(), 43, "{s}");
            assert_eq!(ApiKey::parse(s).unwrap(), key);
            assert!(is_public_id(&key.public_id()));
            assert!(s.starts_with(&key.public_id()));
        }
    }

    #[test]
    fn a_rotated_key_keeps_its_public_id_and_nothing_else() {
        let old = ApiKey::generate(Tier::Pro);
        let new = ApiKey::rotate(&old.public_id()).unwrap();
        assert_eq!(new.public_id(), old.public_id());
        assert_ne!(new.expose_secret(), old.expose_secret());
        assert_ne!(new.hash(), old.hash());
        assert!(ApiKey::parse(new.expose_secret()).is_ok());
        assert!(ApiKey::rotate("om_pro_short").is_err());
    }

    #[test]
    fn two_keys_differ() {
        let a = ApiKey::generate(Tier::Free);
        let b = ApiKey::generate(Tier::Free);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = ApiKey::generate(Tier::Pro);
        let shown = format!("{key:?} {:?}", key.hash());
        assert!(!shown.contains(key.expose_secret()));
        assert!(shown.contains(&key.public_id()));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = ApiKey::generate(Tier::Pro);
        let secret = &good.expose_secret()["om_pro_".len()..];
        for bad in [
            "",
            "om_pro_",
            "sk-abc",
            &format!("om_gold_{secret}"),
            &format!("om_pro_{}", &secret[1..]),
            &format!("om_pro_{secret}x"),
            &format!("om_pro_{}!", &secret[1..]),
        ] {
            assert_eq!(ApiKey::parse(bad), Err(MalformedKey), "{bad}");
        }
    }
}

/// A request to create a key, validated: what both `POST /admin/api-key` and
/// `admin create-key` accept.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRequest {
    pub user_id: String,
    pub tier: Tier,
    pub email: Option<String>,
    pub company: Option<String>,
    pub limits: LimitOverride,
    /// When the key stops working; `None` = never.
    pub expires_at: Option<jiff::Timestamp>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyRequestError {
    #[error("user_id must be 1 to 128 printable characters")]
    UserId,
    #[error(transparent)]
    Tier(#[from] UnknownTier),
    #[error("email must look like name@domain and be at most 254 characters")]
    Email,
    #[error("company must be at most 256 printable characters")]
    Company,
}

impl KeyRequest {
    pub fn parse(
        user_id: &str,
        tier: &str,
        email: Option<&str>,
        company: Option<&str>,
    ) -> Result<KeyRequest, KeyRequestError> {
        let printable = |s: &str, max: usize| s.chars().count() <= max && !s.chars().any(char::is_control);
        let user_id = user_id.trim();
        if user_id.is_empty() || !printable(user_id, 128) {
            return Err(KeyRequestError::UserId);
        }
        let tier = tier.trim().to_ascii_lowercase().parse()?;
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email {
            let shaped = e.split_once('@').is_some_and(|(name, domain)| !name.is_empty() && !domain.is_empty());
            if !shaped || !printable(e, 254) || e.contains(char::is_whitespace) {
                return Err(KeyRequestError::Email);
            }
        }
        let company = company.map(str::trim).filter(|c| !c.is_empty());
        if company.is_some_and(|c| !printable(c, 256)) {
            return Err(KeyRequestError::Company);
        }
        Ok(KeyRequest {
            user_id: user_id.to_string(),
            tier,
            email: email.map(str::to_string),
            company: company.map(str::to_string),
            limits: LimitOverride::default(),
            expires_at: None,
        })
    }

    /// Generates the secret of a key created at `now`. The caller stores the `NewKey` and shows
    /// the `ApiKey` once.
    pub fn issue(self, now: jiff::Timestamp) -> (ApiKey, NewKey) {
        let key = ApiKey::generate(self.tier);
        let new = NewKey {
            hash: key.hash(),
            public_id: key.public_id(),
            user_id: self.user_id,
            tier: self.tier,
            email: self.email,
            company: self.company,
            created_at: now,
            expires_at: self.expires_at,
            limits: self.limits,
        };
        (key, new)
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;

    #[test]
    fn key_requests_are_validated() {
        let ok = KeyRequest::parse(" u1 ", "Pro", Some("a@b.c"), Some("")).unwrap();
        assert_eq!((ok.user_id.as_str(), ok.tier, ok.company), ("u1", Tier::Pro, None));
        assert_eq!(KeyRequest::parse("", "pro", None, None), Err(KeyRequestError::UserId));
        assert!(matches!(KeyRequest::parse("u", "gold", None, None), Err(KeyRequestError::Tier(_))));
        assert_eq!(KeyRequest::parse("u", "free", Some("nope"), None), Err(KeyRequestError::Email));
        assert_eq!(KeyRequest::parse("u\n", "free", None, None).map(|r| r.user_id), Ok("u".into()));
        assert_eq!(KeyRequest::parse("a\u{7}b", "free", None, None), Err(KeyRequestError::UserId));
    }
}
