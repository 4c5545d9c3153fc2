//! A page served from the binary with its assets (`/docs`, `/dashboard`): the page at
//! `/<base>`, its files at `/<base>/<name>`, `/<base>/` redirected (the page's relative links
//! resolve from `/<base>`), each answer with the page's Content-Security-Policy, `nosniff`
//! and no referrer.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::error::ApiError;

pub const JS: &str = "text/javascript; charset=utf-8";
pub const CSS: &str = "text/css; charset=utf-8";

pub struct EmbeddedPage {
    /// The path's one segment: `docs`, `dashboard`.
    pub base: &'static str,
    pub csp: &'static str,
    pub html: &'static str,
    /// The files the page loads: name, content type, bytes.
    pub assets: &'static [(&'static str, &'static str, &'static [u8])],
}

impl EmbeddedPage {
    /// The page itself (routed in `http/mod.rs`, where every route of the API is declared).
    pub fn page(&self) -> Response {
        self.respond(self.html.as_bytes(), "text/html; charset=utf-8", "no-cache")
    }

    /// The asset routes and the `/<base>/` spelling, merged into the router beside the page.
    pub fn asset_routes<S: Clone + Send + Sync + 'static>(&'static self) -> Router<S> {
        let back = format!("../{}", self.base);
        Router::new().route(&format!("/{}/", self.base), get(move || async move { Redirect::permanent(&back) })).route(
            &format!("/{}/{{asset}}", self.base),
            get(move |Path(name): Path<String>| async move { self.asset(&name) }),
        )
    }

    fn asset(&self, name: &str) -> Response {
        match self.assets.iter().find(|(asset, _, _)| *asset == name) {
            // Named without a version, so a browser revalidates them after an hour.
            Some((_, content_type, bytes)) => self.respond(bytes, content_type, "public, max-age=3600"),
            None => ApiError::NotFound.into_response(),
        }
    }

    fn respond(&self, body: &'static [u8], content_type: &'static str, cache_control: &'static str) -> Response {
        let mut response = body.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(self.csp));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        response
    }
}
