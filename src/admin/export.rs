//! `admin export-usage`: usage records as CSV or JSON lines on stdout (or into a file),
//! streamed from the database chunk by chunk (`usage::export`), with a summary on stderr.

use std::io::Write as _;
use std::path::Path;

use serde_json::json;

use super::render::thousands;
use super::{Outcome, find_key};
use crate::store::{ExportFilter, Store};
use crate::usage::export::{ExportFormat, ExportRun};

/// Whose records and which: what the command line said.
pub struct ExportScope<'a> {
    pub key: Option<&'a str>,
    pub user: Option<&'a str>,
    pub since: Option<jiff::Timestamp>,
    pub until: Option<jiff::Timestamp>,
}

pub async fn export_usage(
    store: &Store,
    scope: ExportScope<'_>,
    format: ExportFormat,
    out: Option<&Path>,
) -> anyhow::Result<Outcome> {
    if let (Some(s), Some(u)) = (scope.since, scope.until)
        && s >= u
    {
        return Ok(Outcome::failed(
            &format!("--since ({s}) must be before --until ({u})"),
            json!({"exported": false, "error": "invalid_range"}),
        ));
    }
    let mut filter = ExportFilter { key_id: None, user_id: None, since: scope.since, until: scope.until };
    let what = match (scope.key, scope.user) {
        (Some(given), _) => {
            let record = match find_key(store, given).await? {
                Ok(record) => record,
                Err(outcome) => return Ok(outcome),
            };
            filter.key_id = Some(record.id);
            format!("key {}", record.public_id)
        }
        (None, Some(user)) => {
            if store.keys_of_user(user).await?.is_empty() {
                return Ok(Outcome::failed(
                    &format!("No keys for user {user}"),
                    json!({"exported": false, "error": "not_found"}),
                ));
            }
            filter.user_id = Some(user.to_string());
            format!("user {user}")
        }
        (None, None) => "all keys".to_string(),
    };
    let mut sink: Box<dyn std::io::Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut run = ExportRun::start(store, filter, format);
    while let Some(chunk) = run.next_chunk().await {
        match sink.write_all(&chunk?) {
            // A reader that stopped early (`| head`) is not a failure of the export.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(quiet()),
            other => other?,
        }
    }
    match sink.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(quiet()),
        other => other?,
    }
    drop(sink);
    let t = run.totals;
    eprintln!(
        "Exported {} records of {what} ({} original tokens, {} compressed, {} saved){}",
        thousands(t.records),
        thousands(t.original_tokens),
        thousands(t.compressed_tokens),
        thousands(t.tokens_saved),
        out.map(|p| format!(" into {}", p.display())).unwrap_or_default()
    );
    Ok(quiet())
}

/// The records went to their destination already: nothing more to print on stdout.
fn quiet() -> Outcome {
    Outcome::ok(String::new(), serde_json::Value::Null)
}
