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

use super::embedded::{CSS, EmbeddedPage, JS};

/// This origin's scripts, styles and fetches; no inline code, no other host, no framing, and
/// no form may send anywhere (the sign-in form is handled by the script).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const HTML: &str = include_str!("../../assets/dashboard/index.html");

/// The files the page loads from `/dashboard/<name>`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("chart.umd.js", JS, include_bytes!("../../assets/dashboard/chartjs/chart.umd.js")),
    ("dashboard.js", JS, include_bytes!("../../assets/dashboard/dashboard.js")),
    ("dashboard.css", CSS, include_bytes!("../../assets/dashboard/dashboard.css")),
];

/// The page, its assets and the `/dashboard/` spelling.
pub static PAGE: EmbeddedPage =
    EmbeddedPage { base: "dashboard", csp: CONTENT_SECURITY_POLICY, html: HTML, assets: ASSETS };
