//! Usage export: records as CSV or JSON lines, in chunks of bounded size, for
//! `admin export-usage` and `GET /usage/export`.
//!
//! [`ExportRun`] starts the store's streaming query on a task of its own and turns the records
//! it sends into chunks of about [`CHUNK_BYTES`]; the channel between them holds a few records,
//! so however many records an export has, it holds a few chunks' worth at a time, and a reader
//! that stops reading stops the query. The totals of what was written are counted on the way
//! (they equal `/usage/stats` over the same range).
//!
//! CSV: one header line, then one line per record (RFC 4180 quoting; `metadata` is the tags as
//! a JSON object; a text cell a customer chose that starts with `=`, `+`, `-`, `@`, tab or
//! carriage return gets a leading `'`, so a spreadsheet shows it instead of evaluating it).
//! JSON lines: one object per record, every value as stored.

use std::fmt::Write as _;

use tokio::sync::mpsc;

use crate::store::{ExportFilter, ExportedRecord, Store, StoreError};

/// About how many bytes each chunk holds before it is handed on.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Records in flight between the query and the formatter.
const RECORDS_IN_FLIGHT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::Jsonl),
            other => Err(format!("format must be csv or jsonl, got {other:?}")),
        }
    }
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/x-ndjson",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }
}

pub const CSV_COLUMNS: [&str; 14] = [
    "timestamp",
    "request_id",
    "api_key",
    "user_id",
    "operation",
    "model_id",
    "original_tokens",
    "compressed_tokens",
    "tokens_saved",
    "compression_ratio",
    "quality_score",
    "tool_id",
    "session_id",
    "metadata",
];

/// Sums of the records written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportTotals {
    pub records: u64,
    pub original_tokens: u64,
    pub compressed_tokens: u64,
    pub tokens_saved: u64,
}

/// An export under way: pull chunks with [`ExportRun::next_chunk`] until it answers `None`.
pub struct ExportRun {
    format: ExportFormat,
    records: mpsc::Receiver<ExportedRecord>,
    query: Option<tokio::task::JoinHandle<Result<u64, StoreError>>>,
    header_due: bool,
    pub totals: ExportTotals,
}

impl ExportRun {
    pub fn start(store: &Store, filter: ExportFilter, format: ExportFormat) -> ExportRun {
        let (tx, records) = mpsc::channel(RECORDS_IN_FLIGHT);
        let store = store.clone();
        let query = tokio::spawn(async move { store.export_usage(&filter, tx).await });
        ExportRun {
            format,
            records,
            query: Some(query),
            header_due: format == ExportFormat::Csv,
            totals: ExportTotals::default(),
        }
    }

    /// The next chunk of output; `None` at the end; an error when the query failed (what was
    /// handed on before is then incomplete).
    pub async fn next_chunk(&mut self) -> Option<Result<Vec<u8>, StoreError>> {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES + 1024);
        if std::mem::take(&mut self.header_due) {
            chunk.extend_from_slice(CSV_COLUMNS.join(",").as_bytes());
            chunk.extend_from_slice(b"\r\n");
        }
        while chunk.len() < CHUNK_BYTES {
            // Wait for a record only when there is nothing to hand on yet.
            let next = if chunk.is_empty() {
                self.records.recv().await
            } else {
                match self.records.try_recv() {
                    Ok(r) => Some(r),
                    Err(mpsc::error::TryRecvError::Empty) if chunk.len() < CHUNK_BYTES / 4 => self.records.recv().await,
                    Err(_) => break,
                }
            };
            let Some(record) = next else { break };
            self.totals.records += 1;
            self.totals.original_tokens += record.original_tokens;
            self.totals.compressed_tokens += record.compressed_tokens;
            self.totals.tokens_saved += record.tokens_saved;
            write_record(self.format, &record, &mut chunk);
        }
        if !chunk.is_empty() {
            return Some(Ok(chunk));
        }
        // The channel is closed: the query ended, well or not.
        let query = self.query.take()?;
        match query.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(Err(e)),
            Err(e) => Some(Err(StoreError::Corrupt(format!("the export query stopped: {e}")))),
        }
    }
}

impl Drop for ExportRun {
    fn drop(&mut self) {
        // A reader that went away stops the query at its next row (the channel is closed).
        if let Some(query) = &self.query {
            query.abort();
        }
    }
}

/// `YYYY-MM-DD` (that day's start, UTC) or an RFC 3339 instant (`2026-12-01T00:00:00Z`).
pub fn parse_instant(s: &str) -> Result<jiff::Timestamp, String> {
    let s = s.trim();
    if let Ok(date) = s.parse::<jiff::civil::Date>()
        && s.len() == 10
    {
        return format!("{date}T00:00:00Z").parse::<jiff::Timestamp>().map_err(|e| e.to_string());
    }
    s.parse::<jiff::Timestamp>()
        .map_err(|_| format!("expected a date (2026-12-01) or an RFC 3339 time (2026-12-01T00:00:00Z), got {s:?}"))
}

pub fn write_record(format: ExportFormat, r: &ExportedRecord, out: &mut Vec<u8>) {
    match format {
        ExportFormat::Jsonl => {
            // Serializing plain data into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, r);
            out.push(b'\n');
        }
        ExportFormat::Csv => {
            let mut line = String::with_capacity(256);
            let metadata = if r.metadata.is_empty() {
                String::new()
            } else {
                serde_json::Value::from(r.metadata.clone()).to_string()
            };
            let cells: [String; 14] = [
                crate::store::format_timestamp(r.timestamp),
                csv_cell(&r.request_id),
                csv_cell(&r.api_key),
                csv_text(&r.user_id),
                csv_cell(&r.operation),
                csv_text(&r.model_id),
                r.original_tokens.to_string(),
                r.compressed_tokens.to_string(),
                r.tokens_saved.to_string(),
                r.compression_ratio.to_string(),
                r.quality_score.map(|q| q.to_string()).unwrap_or_default(),
                r.tool_id.as_deref().map(csv_text).unwrap_or_default(),
                r.session_id.as_deref().map(csv_text).unwrap_or_default(),
                csv_cell(&metadata),
            ];
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{cell}");
            }
            line.push_str("\r\n");
            out.extend_from_slice(line.as_bytes());
        }
    }
}

/// A text cell a customer chose: defused against spreadsheet formulas, then quoted.
fn csv_text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { csv_cell(&format!("'{value}")) } else { csv_cell(value) }
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.
fn csv_cell(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ExportedRecord {
        ExportedRecord {
            timestamp: "2026-12-06T07:00:00.123Z".parse().unwrap(),
            request_id: "req_1".into(),
            api_key: "om_pro_AbCdEfGh".into(),
            user_id: "alice".into(),
            operation: "compress".into(),
            model_id: "gpt-4".into(),
            original_tokens: 100,
            compressed_tokens: 25,
            tokens_saved: 75,
            compression_ratio: 0.75,
            quality_score: Some(0.9),
            tool_id: Some("=HYPERLINK(\"x\")".into()),
            session_id: None,
            metadata: serde_json::json!({"team": "a,b"}).as_object().unwrap().clone(),
        }
    }

    #[test]
    fn csv_lines_are_quoted_and_defused() {
        let mut out = Vec::new();
        write_record(ExportFormat::Csv, &record(), &mut out);
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "2026-12-06T07:00:00.123Z,req_1,om_pro_AbCdEfGh,alice,compress,gpt-4,100,25,75,0.75,0.9,\
             \"'=HYPERLINK(\"\"x\"\")\",,\"{\"\"team\"\":\"\"a,b\"\"}\"\r\n"
        );
    }

    #[test]
    fn dates_are_utc_days_or_instants() {
        assert_eq!(parse_instant("2026-12-01").unwrap().to_string(), "2026-12-01T00:00:00Z");
        assert_eq!(parse_instant("2026-12-01T05:00:00+01:00").unwrap().to_string(), "2026-12-01T04:00:00Z");
        for bad in ["", "yesterday", "2026-13-01", "2026-12-01T05:00:00"] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jsonl_lines_keep_every_value() {
        let mut out = Vec::new();
        write_record(ExportFormat::Jsonl, &record(), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["tool_id"], "=HYPERLINK(\"x\")");
        assert_eq!(v["metadata"]["team"], "a,b");
        assert_eq!(v["timestamp"], "2026-12-06T07:00:00.123Z");
        let mut whole_second = record();
        whole_second.timestamp = "2026-12-06T07:00:01.100Z".parse().unwrap();
        let mut out = Vec::new();
        write_record(ExportFormat::Jsonl, &whole_second, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["timestamp"], "2026-12-06T07:00:01.100Z");
    }
}
