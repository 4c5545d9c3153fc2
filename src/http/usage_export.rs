//! `GET /usage/export?format=csv|jsonl&since=…&until=…`: every usage record of the caller's own
//! key (never another key's), with its tags, streamed as it is read from the database. An
//! export may read millions of rows, so it takes from the key's request bucket, as
//! `/count-tokens` does (429 with `Retry-After` when it is empty; no tokens, no record).
//!
//! The first chunk is read before the answer starts, so a storage outage is a 503 like
//! anywhere else; a failure after that cuts the chunked body short (no final chunk), which
//! a client sees as an incomplete download rather than a complete-looking file.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::Deserialize;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use super::json::ApiQuery;
use super::limits::admit_request;
use super::rate_headers::rate_headers;
use crate::store::ExportFilter;
use crate::usage::export::{ExportFormat, ExportRun, parse_instant};

/// Only these parameters are read; nothing names another key or user.
#[derive(Debug, Deserialize)]
pub struct ExportParams {
    pub format: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

fn instant(name: &str, raw: Option<&str>) -> Result<Option<jiff::Timestamp>, ApiError> {
    raw.filter(|s| !s.is_empty())
        .map(|s| parse_instant(s).map_err(|e| ApiError::InvalidRequest(format!("{name}: {e}"))))
        .transpose()
}

pub async fn export(
    State(state): State<AppState>,
    Authenticated(key): Authenticated,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let format: ExportFormat = params.format.as_deref().unwrap_or("csv").parse().map_err(ApiError::InvalidRequest)?;
    let since = instant("since", params.since.as_deref())?;
    let until = instant("until", params.until.as_deref())?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(ApiError::InvalidRequest(format!("since ({s}) must be before until ({u})")));
    }
    let admission = admit_request(&state, &key).await?;
    let mut headers = axum::http::HeaderMap::new();
    rate_headers(&mut headers, &admission.status);
    state.writer.touch(admission);
    let filter = ExportFilter { key_id: Some(key.id), user_id: None, since, until };
    let mut run = ExportRun::start(&state.store, filter, format);
    let first = match run.next_chunk().await {
        Some(Ok(chunk)) => Some(chunk),
        Some(Err(e)) => return Err(ApiError::storage(e)),
        None => None,
    };
    let public_id = key.public_id.clone();
    let rest = futures_util::stream::unfold(Some(run), move |run| {
        let public_id = public_id.clone();
        async move {
            let mut run = run?;
            match run.next_chunk().await {
                Some(Ok(chunk)) => Some((Ok(Bytes::from(chunk)), Some(run))),
                Some(Err(e)) => {
                    tracing::error!(key = %public_id, "usage export failed midway: {e}");
                    Some((Err(std::io::Error::other("the usage export failed")), None))
                }
                None => None,
            }
        }
    });
    let body = futures_util::stream::iter(first.map(|c| Ok::<_, std::io::Error>(Bytes::from(c)))).chain(rest);
    let filename = format!("attachment; filename=\"usage-{}.{}\"", key.public_id, format.extension());
    Ok((
        headers,
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, filename),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
