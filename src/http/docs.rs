//! `GET /docs`: interactive API docs (Swagger UI) over the service's own `/openapi.json`.
//!
//! Every byte of the page is in the binary: Swagger UI's bundle and stylesheet are vendored
//! from the `swagger-ui-dist` npm package in `assets/docs/swagger-ui/` (Apache-2.0; its
//! `LICENSE` and `NOTICE` sit beside them) and included at compile time. Nothing is fetched
//! from elsewhere, at build time or at run time, and the page's Content-Security-Policy lets
//! the browser load only this service's own scripts, styles and data: a key typed into
//! "Authorize" can be sent to this service and nowhere else.
//!
//! The assets are static files, not API operations, so only `/docs` itself is in
//! `openapi.json`. No key is needed to read the page; "try it out" sends the key the user types.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::error::ApiError;

/// What the browser may load on a docs response: this origin's scripts, styles and fetches,
/// and the `data:` images inside swagger-ui.css. No inline script, no other host, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const PAGE: &str = include_str!("../../assets/docs/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The files the page loads from `/docs/<name>`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("swagger-ui-bundle.js", JS, include_bytes!("../../assets/docs/swagger-ui/swagger-ui-bundle.js")),
    ("swagger-ui.css", CSS, include_bytes!("../../assets/docs/swagger-ui/swagger-ui.css")),
    ("init.js", JS, include_bytes!("../../assets/docs/init.js")),
    ("page.css", CSS, include_bytes!("../../assets/docs/page.css")),
];

/// The asset routes and the `/docs/` spelling, merged into the router beside `/docs`.
pub fn asset_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        // Relative links on the page resolve from `/docs`; `/docs/` would break them.
        .route("/docs/", get(|| async { Redirect::permanent("../docs") }))
        .route("/docs/{asset}", get(asset))
}

/// The page itself.
pub async fn page() -> Response {
    with_headers(PAGE.as_bytes(), "text/html; charset=utf-8", "no-cache")
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        // The page names its assets without a version, so a browser revalidates them after an hour.
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
