//! `GET /dashboard`: usage pages in a browser, for customers (their API key) and for the
//! operator (the admin key), over the JSON endpoints `/usage/quota`, `/usage/daily`,
//! `/usage/stats`, `/usage/recent` and `/admin/keys`.
//!
//! Every byte of the page is in the binary: its HTML, script and stylesheet in
//! `assets/dashboard/`, and Chart.js's prebuilt UMD file from the `chart.js` npm package
//! (MIT; its licence beside it in `assets/dashboard/chartjs/`). Nothing is fetched from
//! elsewhere, and the Content-Security-Policy lets the browser load and send to this service
//! only: no inline script or style, no other host, no framing.
//!
//! What the page does with a key: it keeps it in the tab's `sessionStorage` (gone when the tab
//! closes) and sends it in `Authorization: Bearer` (or `X-Admin-Key`), never in a URL or a
//! cookie, so it reaches no access log. It renders every value it receives as text
//! (`textContent`), never as markup: a tag or a user id cannot become HTML.
//!
//! The assets are static files, not API operations, so only `/dashboard` is in `openapi.json`.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::error::ApiError;

/// This origin's scripts, styles and fetches; no inline code, no other host, no framing, and
/// no form may send anywhere (the sign-in form is handled by the script).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../../assets/dashboard/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The files the page loads from `/dashboard/<name>`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("chart.umd.js", JS, include_bytes!("../../assets/dashboard/chartjs/chart.umd.js")),
    ("dashboard.js", JS, include_bytes!("../../assets/dashboard/dashboard.js")),
    ("dashboard.css", CSS, include_bytes!("../../assets/dashboard/dashboard.css")),
];

/// The asset routes and the `/dashboard/` spelling, merged into the router beside `/dashboard`.
pub fn asset_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        // Relative links on the page resolve from `/dashboard`; `/dashboard/` would break them.
        .route("/dashboard/", get(|| async { Redirect::permanent("../dashboard") }))
        .route("/dashboard/{asset}", get(asset))
}

/// The page itself.
pub async fn page() -> Response {
    with_headers(PAGE.as_bytes(), "text/html; charset=utf-8", "no-cache")
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        // Named without a version, so a browser revalidates them after an hour.
        Some((_, content_type, bytes)) => with_headers(bytes, content_type, "public, max-age=3600"),
        None => ApiError::NotFound.into_response(),
    }
}

fn with_headers(body: &'static [u8], content_type: &'static str, cache_control: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
