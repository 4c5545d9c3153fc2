//! The admin CLI: `omnimemory admin <command>`, working on the storage directly (no server).
//!
//! Each command returns an [`Outcome`]: text for a terminal and a JSON value for `--json`.
//! Exit codes: 0 success, 1 a failed check or operation, 2 a usage error (clap's own).
//! Keys are named by the full key or by their public id; secrets are printed only by
//! `create-key` and `rotate-key`, once.

mod backup;
mod export;
mod render;
mod rotate;

use std::io::{BufRead, IsTerminal, Write};

use clap::{Args, Subcommand};
use serde_json::json;

use crate::clock::Clock;
use crate::config::Settings;
use crate::keys::{self, ApiKey, KeyRecord, KeyRequest, LimitOverride, Tier};
use crate::limits::{LevelsSource, Limiter};
use crate::quota::Period;
use crate::store::{Store, UsageSummary, is_tag_name};
use render::{Page, new_table, thousands, usage_bar};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an API key (shown once).
    CreateKey {
        #[arg(long)]
        user_id: String,
        #[arg(long, value_parser = parse_tier)]
        tier: Tier,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        company: Option<String>,
        /// This key's own monthly token limit (instead of the tier's).
        #[arg(long)]
        monthly_tokens: Option<u64>,
        /// This key's own request rate (instead of the tier's).
        #[arg(long)]
        requests_per_second: Option<f64>,
        /// This key's own request burst (instead of the tier's).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        burst: Option<u32>,
        /// The key stops working this many days after creation.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// Check a key and show its owner, status and this month's usage.
    VerifyKey { key: String },
    /// Usage totals of a key over the last N days.
    UsageStats {
        key: String,
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// Break the totals down by model.
        #[arg(long)]
        detailed: bool,
        /// Break the totals down by the value of this metadata tag.
        #[arg(long)]
        group_by: Option<String>,
    },
    /// List keys, newest first.
    ListUsers {
        #[arg(long, value_parser = parse_tier)]
        tier: Option<Tier>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Give a key a new secret (shown once); its id, user, tier, limits, quota and usage stay.
    /// The old secret keeps working for the grace period, then is refused (`api_key_rotated`).
    #[command(
        after_help = "Examples:\n  omnimemory admin rotate-key om_pro_AbCdEfGh                   # old secret works 24 more hours\n  omnimemory admin rotate-key om_pro_AbCdEfGh --grace-hours 0   # leaked: refuse it at once"
    )]
    RotateKey {
        key: String,
        /// Hours the old secret keeps working (0 = refused at once).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(0..=8760))]
        grace_hours: u32,
    },
    /// Refuse a key from now on (within a second on a running server).
    DeactivateKey { key: String },
    /// Accept a deactivated key again.
    ActivateKey { key: String },
    /// Reset this month's quota usage: all keys, or a user's, or one key.
    ResetUsage {
        #[arg(long, conflicts_with = "key")]
        user_id: Option<String>,
        #[arg(long)]
        key: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Limits of a key and the state of its buckets.
    RateLimitInfo { key: String },
    /// Where the data is and how much of it there is.
    DatabaseInfo,
    /// Write a consistent snapshot of the SQLite databases and a manifest into DIR, while the
    /// server runs and takes traffic (SQLite's `VACUUM INTO`). PostgreSQL: use pg_dump.
    #[command(after_help = "Example:\n  omnimemory admin backup /var/backups/omnimemory/$(date +%F)")]
    Backup {
        /// A new or empty folder.
        dir: std::path::PathBuf,
    },
    /// Replace the data folder's databases with a backup made by `admin backup`, after checking
    /// its manifest; refused while a server runs on the folder. The data replaced is moved
    /// into `pre-restore-<time>/` in the data folder.
    #[command(
        after_help = "Example:\n  OMNIMEMORY_HOME=/srv/omnimemory omnimemory admin restore /var/backups/omnimemory/2026-12-06"
    )]
    Restore {
        /// A folder written by `admin backup`.
        dir: std::path::PathBuf,
    },
    /// Write usage records with their tags as CSV or JSON lines (stdout, or --out FILE),
    /// streamed from the database; a summary goes to stderr. Dates are UTC days
    /// (2026-12-01) or RFC 3339 times; --since is inclusive, --until exclusive.
    #[command(
        after_help = "Examples:\n  omnimemory admin export-usage --user alice --since 2026-11-01 --until 2026-12-01 --format csv > alice-2026-11.csv\n  omnimemory admin export-usage --key om_pro_AbCdEfGh --format jsonl --out usage.jsonl"
    )]
    ExportUsage {
        /// One key (the full key or its public id).
        #[arg(long, conflicts_with = "user")]
        key: Option<String>,
        /// Every key of one user.
        #[arg(long)]
        user: Option<String>,
        #[arg(long, value_parser = crate::usage::export::parse_instant)]
        since: Option<jiff::Timestamp>,
        #[arg(long, value_parser = crate::usage::export::parse_instant)]
        until: Option<jiff::Timestamp>,
        #[arg(long, value_parser = ["csv", "jsonl"])]
        format: String,
        /// Write into this file instead of stdout.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

/// What `create-key` may add to a key beyond its owner and tier.
struct KeyExtras {
    limits: LimitOverride,
    expires_at: Option<jiff::Timestamp>,
}

fn parse_tier(s: &str) -> Result<Tier, String> {
    s.to_ascii_lowercase().parse().map_err(|e: keys::UnknownTier| e.to_string())
}

/// What a command produced: shown as text, or as JSON with `--json`.
pub struct Outcome {
    pub success: bool,
    pub text: String,
    pub json: serde_json::Value,
}

impl Outcome {
    fn ok(text: String, json: serde_json::Value) -> Outcome {
        Outcome { success: true, text, json }
    }
    fn failed(message: &str, json: serde_json::Value) -> Outcome {
        Outcome { success: false, text: format!("✗ {message}\n"), json }
    }
}

/// Runs one command; `Err` is an operational failure (storage), also exit code 1.
/// Every "now" a command needs comes from `clock` (the system's, but for tests).
pub async fn run(args: &AdminArgs, settings: &Settings, clock: &dyn Clock) -> anyhow::Result<Outcome> {
    // These two work on the database files, not through an open store.
    match &args.command {
        AdminCommand::Backup { dir } => return backup::backup(settings, dir, clock).await,
        AdminCommand::Restore { dir } => return backup::restore(settings, dir, clock).await,
        _ => {}
    }
    let store = Store::open(&settings.home, settings.database_url.as_deref()).await?;
    let at = Context { settings, store: &store, now: clock.now() };
    let outcome = dispatch(&args.command, args.json, &at).await;
    store.close().await;
    outcome
}

/// What every command works with: the settings, the open store, and the time it runs at.
struct Context<'a> {
    settings: &'a Settings,
    store: &'a Store,
    now: jiff::Timestamp,
}

async fn dispatch(cmd: &AdminCommand, json: bool, at: &Context<'_>) -> anyhow::Result<Outcome> {
    use AdminCommand::*;
    let (store, now) = (at.store, at.now);
    match cmd {
        CreateKey { user_id, tier, email, company, monthly_tokens, requests_per_second, burst, expires_in_days } => {
            let limits = LimitOverride {
                monthly_tokens: *monthly_tokens,
                requests_per_second: *requests_per_second,
                burst: *burst,
            };
            let expires_at = expires_in_days.map(|d| now + jiff::SignedDuration::from_hours(24 * i64::from(d)));
            let extras = KeyExtras { limits, expires_at };
            create_key(at, user_id, *tier, email.as_deref(), company.as_deref(), extras).await
        }
        VerifyKey { key } => verify_key(at, key).await,
        UsageStats { key, days, detailed, group_by } => {
            usage_stats(at, key, *days, *detailed, group_by.as_deref()).await
        }
        ListUsers { tier, limit } => list_users(store, *tier, *limit).await,
        DeactivateKey { key } => set_active(store, key, false).await,
        ActivateKey { key } => set_active(store, key, true).await,
        ResetUsage { user_id, key, yes } => reset_usage(at, user_id.as_deref(), key.as_deref(), *yes, json).await,
        RateLimitInfo { key } => rate_limit_info(at, key).await,
        DatabaseInfo => database_info(store).await,
        RotateKey { key, grace_hours } => rotate::rotate_key(store, key, *grace_hours, now).await,
        ExportUsage { key, user, since, until, format, out } => {
            let scope =
                export::ExportScope { key: key.as_deref(), user: user.as_deref(), since: *since, until: *until };
            let format = format.parse().map_err(anyhow::Error::msg)?;
            export::export_usage(store, scope, format, out.as_deref()).await
        }
        Backup { .. } | Restore { .. } => unreachable!("`run` handles them without opening the store"),
    }
}

/// Finds a key by its full form or its public id. `Ok(Err(outcome))` is a failed lookup.
async fn find_key(store: &Store, given: &str) -> anyhow::Result<Result<KeyRecord, Outcome>> {
    let given = given.trim();
    let found = if let Ok(key) = ApiKey::parse(given) {
        store.key_by_hash(&key.hash()).await?
    } else if keys::is_public_id(given) {
        store.key_by_public_id(given).await?
    } else {
        return Ok(Err(Outcome::failed(
            "Not an API key or key id (expected om_<tier>_…)",
            json!({"valid": false, "error": "malformed_key"}),
        )));
    };
    Ok(found.ok_or_else(|| Outcome::failed("Key not found", json!({"valid": false, "error": "not_found"}))))
}

macro_rules! found_or_return {
    ($lookup:expr) => {
        match $lookup? {
            Ok(record) => record,
            Err(outcome) => return Ok(outcome),
        }
    };
}

/// `2026-12-06 07:41 (gpt-4o)`, or `never`; to the minute, as storage has it.
fn last_used_text(record: &KeyRecord) -> String {
    match (&record.last_used_at, &record.last_used_model) {
        (None, _) => "never".to_string(),
        (Some(at), Some(model)) => format!("{} UTC ({model})", at.strftime("%Y-%m-%d %H:%M")),
        (Some(at), None) => format!("{} UTC", at.strftime("%Y-%m-%d %H:%M")),
    }
}

fn limit_text(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_string(), |l| format!("{} tokens", thousands(l)))
}

async fn create_key(
    at: &Context<'_>,
    user_id: &str,
    tier: Tier,
    email: Option<&str>,
    company: Option<&str>,
    extras: KeyExtras,
) -> anyhow::Result<Outcome> {
    let KeyExtras { limits, expires_at } = extras;
    if limits.requests_per_second.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Ok(Outcome::failed(
            "--requests-per-second must be a positive number",
            json!({"created": false, "error": "invalid_rate"}),
        ));
    }
    let request = match KeyRequest::parse(user_id, tier.as_str(), email, company) {
        Ok(r) => KeyRequest { limits, expires_at, ..r },
        Err(e) => {
            return Ok(Outcome::failed(&e.to_string(), json!({"created": false, "error": e.to_string()})));
        }
    };
    let (key, new) = request.issue(at.now);
    let record = at.store.insert_key(&new).await?;
    let policy = at.settings.policy_for(&record);
    let text = Page::default()
        .banner("✓ API key created")
        .field("API Key", key.expose_secret())
        .field("Key ID", &record.public_id)
        .field("User ID", &record.user_id)
        .field("Tier", record.tier)
        .field("Email", record.email.as_deref().unwrap_or("-"))
        .field("Company", record.company.as_deref().unwrap_or("-"))
        .field("Created", record.created_at)
        .field("Expires", record.expires_at.map_or_else(|| "never".to_string(), |t| t.to_string()))
        .field("Monthly limit", limit_text(policy.monthly_limit))
        .field("Rate limit", format!("{} req/s (burst {})", policy.requests.per_second, policy.burst()))
        .line("\n  Store this key now: it is shown only once.")
        .finish();
    let json = json!({
        "created": true, "api_key": key.expose_secret(), "key_id": record.public_id,
        "user_id": record.user_id, "tier": record.tier, "email": record.email,
        "company": record.company, "created_at": record.created_at, "expires_at": record.expires_at,
    });
    Ok(Outcome::ok(text, json))
}

async fn verify_key(at: &Context<'_>, given: &str) -> anyhow::Result<Outcome> {
    let (settings, store, now) = (at.settings, at.store, at.now);
    let record = found_or_return!(find_key(store, given).await);
    let period = Period::of(now);
    let used = store.quota_used(record.id, period).await?;
    let limit = settings.policy_for(&record).monthly_limit;
    let status = record.status(now);
    let valid = status == "active";
    let mut page = Page::default();
    page.banner(if valid { "✓ Valid API key" } else { "✗ API key not usable" })
        .field("Key ID", &record.public_id)
        .field("User ID", &record.user_id)
        .field("Tier", record.tier)
        .field("Status", status)
        .field("Email", record.email.as_deref().unwrap_or("-"))
        .field("Company", record.company.as_deref().unwrap_or("-"))
        .field("Created", record.created_at)
        .field("Expires", record.expires_at.map_or_else(|| "never".to_string(), |t| t.to_string()))
        .field("Last used", last_used_text(&record))
        .section(&format!("Usage this month ({period})"))
        .field("Used", format!("{} tokens", thousands(used)))
        .field("Monthly limit", limit_text(limit));
    if let Some(l) = limit {
        page.field("Remaining", format!("{} tokens", thousands(l.saturating_sub(used))));
    }
    page.line(format!("  {}", usage_bar(used, limit)));
    let json = json!({
        "valid": valid, "status": status, "key_id": record.public_id, "user_id": record.user_id,
        "tier": record.tier, "email": record.email, "company": record.company,
        "created_at": record.created_at, "expires_at": record.expires_at, "period": period,
        "last_used_at": record.last_used_at, "last_used_model": record.last_used_model,
        "usage": {"current_usage": used, "monthly_limit": limit,
                  "remaining": limit.map(|l| l.saturating_sub(used)), "unlimited": limit.is_none()},
    });
    Ok(Outcome { success: valid, text: page.finish(), json })
}

async fn usage_stats(
    at: &Context<'_>,
    given: &str,
    days: u32,
    detailed: bool,
    group_by: Option<&str>,
) -> anyhow::Result<Outcome> {
    if group_by.is_some_and(|tag| !is_tag_name(tag)) {
        return Ok(Outcome::failed(
            "--group-by takes a tag name of 1 to 64 characters of A-Z a-z 0-9 _ - .",
            json!({"error": "invalid_group_by"}),
        ));
    }
    let store = at.store;
    let record = found_or_return!(find_key(store, given).await);
    let since = at.now - jiff::SignedDuration::from_hours(24 * i64::from(days));
    let stats: UsageSummary = store.usage_summary(record.id, since).await?;
    let mut page = Page::default();
    page.banner(&format!("Usage of {} over the last {days} days", record.public_id))
        .field("User ID", &record.user_id)
        .field("Tier", record.tier)
        .field("Compressions", thousands(stats.total_compressions))
        .field("Original tokens", thousands(stats.total_original_tokens))
        .field("Compressed tokens", thousands(stats.total_compressed_tokens))
        .field("Tokens saved", thousands(stats.total_tokens_saved))
        .field("Avg compression", format!("{:.1}%", stats.avg_compression_ratio * 100.0))
        .field("Avg quality", format!("{:.3}", stats.avg_quality_score));
    if detailed {
        let mut table = new_table(&["Model", "Compressions", "Tokens saved"]);
        for m in &stats.by_model {
            table.add_row([m.model_id.clone(), thousands(m.count), thousands(m.tokens_saved)]);
        }
        page.section("By model").table(&table);
    }
    let groups = match group_by {
        Some(tag) => Some(store.usage_by_tag(record.id, since, tag).await?),
        None => None,
    };
    if let (Some(tag), Some(groups)) = (group_by, &groups) {
        let mut table = new_table(&[tag, "Compressions", "Original tokens", "Tokens saved"]);
        for g in groups {
            table.add_row([
                g.value.clone().unwrap_or_else(|| "(untagged)".into()),
                thousands(g.count),
                thousands(g.original_tokens),
                thousands(g.tokens_saved),
            ]);
        }
        page.section(&format!("By {tag}")).table(&table);
    }
    let json = json!({"key_id": record.public_id, "user_id": record.user_id, "days": days, "stats": stats,
                      "group_by": group_by, "groups": groups});
    Ok(Outcome::ok(page.finish(), json))
}

async fn list_users(store: &Store, tier: Option<Tier>, limit: u32) -> anyhow::Result<Outcome> {
    let keys = store.list_keys(tier, limit).await?;
    let mut table = new_table(&["Key ID", "User ID", "Tier", "Email", "Company", "Status", "Created", "Last used"]);
    for k in &keys {
        table.add_row([
            k.public_id.clone(),
            k.user_id.clone(),
            k.tier.to_string(),
            k.email.clone().unwrap_or_default(),
            k.company.clone().unwrap_or_default(),
            (if k.active { "active" } else { "deactivated" }).to_string(),
            k.created_at.strftime("%Y-%m-%d %H:%M").to_string(),
            last_used_text(k),
        ]);
    }
    let title = match tier {
        Some(t) => format!("API keys ({t}): {}", keys.len()),
        None => format!("API keys: {}", keys.len()),
    };
    let text = Page::default().banner(&title).table(&table).finish();
    Ok(Outcome::ok(text, json!({"count": keys.len(), "keys": keys})))
}

async fn set_active(store: &Store, given: &str, active: bool) -> anyhow::Result<Outcome> {
    let record = found_or_return!(find_key(store, given).await);
    store.set_key_active(record.id, active).await?;
    let verb = if active { "activated" } else { "deactivated" };
    let text = Page::default()
        .banner(&format!("✓ Key {verb}"))
        .field("Key ID", &record.public_id)
        .field("User ID", &record.user_id)
        .field("Was", if record.active { "active" } else { "deactivated" })
        .finish();
    Ok(Outcome::ok(text, json!({"key_id": record.public_id, "user_id": record.user_id, "active": active})))
}

async fn reset_usage(
    at: &Context<'_>,
    user_id: Option<&str>,
    key: Option<&str>,
    yes: bool,
    json_output: bool,
) -> anyhow::Result<Outcome> {
    let store = at.store;
    let (scope, ids) = match (user_id, key) {
        (_, Some(given)) => {
            let record = found_or_return!(find_key(store, given).await);
            (format!("key {}", record.public_id), Some(vec![record.id]))
        }
        (Some(user), None) => {
            let keys = store.keys_of_user(user).await?;
            if keys.is_empty() {
                return Ok(Outcome::failed(
                    &format!("No keys for user {user}"),
                    json!({"reset": false, "error": "not_found"}),
                ));
            }
            (format!("user {user} ({} keys)", keys.len()), Some(keys.iter().map(|k| k.id).collect()))
        }
        (None, None) => ("ALL keys".to_string(), None),
    };
    let period = Period::of(at.now);
    if !yes && !confirm(&format!("Reset {period} quota usage of {scope}?"), json_output)? {
        return Ok(Outcome::failed("Aborted: nothing was reset", json!({"reset": false, "error": "aborted"})));
    }
    let rows = store.reset_quota(ids.as_deref(), at.now).await?;
    let text = Page::default()
        .banner("✓ Usage reset")
        .field("Scope", &scope)
        .field("Period", period)
        .field("Ledgers reset", thousands(rows))
        .finish();
    Ok(Outcome::ok(text, json!({"reset": true, "scope": scope, "period": period, "ledgers_reset": rows})))
}

/// Asks on the terminal; anything but `y`/`yes` (or end of input) declines.
fn confirm(question: &str, quiet: bool) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    if !quiet || std::io::stdin().is_terminal() {
        write!(err, "{question} [y/N] ")?;
        err.flush()?;
    }
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// Limits of a key and its buckets as last saved by a server (a running server saves them
/// with every batch of usage records, and all of them when it stops).
async fn rate_limit_info(at: &Context<'_>, given: &str) -> anyhow::Result<Outcome> {
    let (settings, store, now) = (at.settings, at.store, at.now);
    let record = found_or_return!(find_key(store, given).await);
    let policy = settings.policy_for(&record);
    // The levels as of now: live when the limiter shares them; otherwise the levels the server
    // last saved, refilled up to now by the same limiter code the server runs.
    let limiter = Limiter::from_settings(settings)?;
    let source = limiter.levels_source(store, record.id).await?;
    let status = limiter.status(store, record.id, &policy, now).await?;
    let mut page = Page::default();
    page.banner(&format!("Rate limits of {}", record.public_id))
        .field("Tier", record.tier)
        .field("State", source.describe())
        .section("Requests")
        .field("Rate", format!("{} req/s, burst {}", policy.requests.per_second, policy.burst()))
        .field("Available now", thousands(status.requests_remaining))
        .field("Full in", format!("{} s", status.requests_reset_secs))
        .section("Tokens");
    match &status.tokens {
        Some(t) => {
            page.field("Refill", format!("{:.2} tokens/s", t.per_second))
                .field("Capacity", format!("{} tokens", thousands(t.capacity as u64)))
                .field("Available now", format!("{} tokens", thousands(t.available.floor() as u64)))
                .line(format!("  {}", usage_bar((t.capacity - t.available).max(0.0) as u64, Some(t.capacity as u64))));
        }
        None => {
            page.field("Refill", "unlimited");
        }
    }
    page.section(&format!("Monthly quota ({})", status.period))
        .field("Used", format!("{} tokens", thousands(status.used)))
        .field("Limit", limit_text(status.monthly_limit))
        .field("Resets at", status.resets_at);
    let json = json!({
        "key_id": record.public_id, "tier": record.tier,
        "saved_state": source != LevelsSource::Fresh,
        "requests_per_second": policy.requests.per_second, "burst": policy.burst(),
        "requests_available": status.requests_remaining, "requests_full_in_secs": status.requests_reset_secs,
        "tokens_per_second": status.tokens.as_ref().map(|t| t.per_second),
        "tokens_capacity": status.tokens.as_ref().map(|t| t.capacity as u64),
        "tokens_available": status.tokens.as_ref().map(|t| t.available.floor() as u64),
        "monthly_limit": status.monthly_limit, "used": status.used, "period": status.period,
        "resets_at": status.resets_at,
    });
    Ok(Outcome::ok(page.finish(), json))
}

async fn database_info(store: &Store) -> anyhow::Result<Outcome> {
    let info = store.database_info().await?;
    let mut page = Page::default();
    page.banner("Database")
        .field("Backend", info.backend)
        .field("Location", &info.location)
        .field("Schema version", info.schema_version)
        .field("Keys", format!("{} ({} active)", thousands(info.total_keys), thousands(info.active_keys)))
        .field("Usage records", thousands(info.usage_records));
    let mut files = new_table(&["File", "Size (bytes)"]);
    for f in &info.files {
        files.add_row([f.path.clone(), thousands(f.bytes)]);
    }
    let mut tiers = new_table(&["Tier", "Keys"]);
    for (tier, n) in &info.keys_by_tier {
        tiers.add_row([tier.to_string(), thousands(*n)]);
    }
    page.section("Files").table(&files).section("Keys by tier").table(&tiers);
    Ok(Outcome::ok(page.finish(), serde_json::to_value(&info)?))
}
