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

use super::embedded::{CSS, EmbeddedPage, JS};

/// What the browser may load on a docs response: this origin's scripts, styles and fetches,
/// and the `data:` images inside swagger-ui.css. No inline script, no other host, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const HTML: &str = include_str!("../../assets/docs/index.html");

/// The files the page loads from `/docs/<name>`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("swagger-ui-bundle.js", JS, include_bytes!("../../assets/docs/swagger-ui/swagger-ui-bundle.js")),
    ("swagger-ui.css", CSS, include_bytes!("../../assets/docs/swagger-ui/swagger-ui.css")),
    ("init.js", JS, include_bytes!("../../assets/docs/init.js")),
    ("page.css", CSS, include_bytes!("../../assets/docs/page.css")),
];

/// The page, its assets and the `/docs/` spelling.
pub static PAGE: EmbeddedPage = EmbeddedPage { base: "docs", csp: CONTENT_SECURITY_POLICY, html: HTML, assets: ASSETS };
