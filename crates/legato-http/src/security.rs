//! Security headers on every response: the page may run only our own scripts (and the
//! worker hls.js starts from a `blob:` URL), nothing may frame us, and no browser sniffs a
//! content type or leaks a signed URL in a `Referer`.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The web player: scripts and styles from this origin only; hls.js runs its transmuxer in a
/// worker made from a `blob:` URL and feeds the `<audio>` element through a `blob:` media
/// source. The API may live on another server (the settings dialog, `?api=`), so fetches,
/// media and cover images may come from any http(s) origin.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; worker-src 'self' blob:; \
style-src 'self'; img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:; \
connect-src 'self' http: https:; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// Everything else (JSON, playlists, segments, assets) is data, never a document.
pub const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The headers every answer carries, whatever it is; the Content-Security-Policy is
/// [`DATA_POLICY`] unless the answer is the page ([`PAGE_POLICY`]). Answers written outside
/// the router (the connection limit's 503) carry them too, as [`data_headers`].
const ALWAYS: [(HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// The security headers of an answer that is data, not the page: names and values.
pub fn data_headers() -> impl Iterator<Item = (HeaderName, &'static str)> {
    ALWAYS
        .into_iter()
        .chain([(header::CONTENT_SECURITY_POLICY, DATA_POLICY)])
}

pub async fn headers(request: Request, next: Next) -> Response {
    // Decided from the path as well as the answer: a 304 for the page has no content type,
    // and its headers replace the cached page's.
    let path = request.uri().path();
    let page_path = path == "/" || path.ends_with(".html");
    let mut response = next.run(request).await;
    let is_page = page_path
        || response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    for (name, value) in ALWAYS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if is_page { PAGE_POLICY } else { DATA_POLICY }),
    );
    response
}
