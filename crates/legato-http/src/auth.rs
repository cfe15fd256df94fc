//! API keys: writes (and, for a private library, reads) need `Authorization: Bearer <key>`.
//!
//! Several keys may be valid at once so a key can be rotated without downtime: add the new
//! one, move clients over, remove the old one. Keys are compared in constant time and never
//! logged or shown in `Debug` output.

use std::fmt;
use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<String>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} configured, redacted)", self.keys.len())
    }
}

impl ApiKeys {
    /// Keys one per line; blank lines and lines starting with `#` are ignored.
    pub fn parse(text: &str) -> Self {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Self { keys }
    }

    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when `candidate` is one of the keys. Every key is compared, in constant time, so
    /// the time taken says nothing about which key or how much of it matched.
    pub fn accepts(&self, candidate: &str) -> bool {
        let mut found = subtle::Choice::from(0);
        for key in &self.keys {
            found |= key.as_bytes().ct_eq(candidate.as_bytes());
        }
        found.into()
    }
}

/// Middleware for the crud routes: checks the bearer key where one is needed.
pub async fn require_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let keys = &state.config.api_keys;
    let is_read = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if keys.is_empty() || (is_read && !state.config.private) {
        return Ok(next.run(request).await);
    }
    check_key_or_session(&state, request.headers(), !is_read).await?;
    Ok(next.run(request).await)
}

/// The bearer key, or else the web player's session: any signed-in user may read a private
/// library; only an admin may write, and a write must carry the page's CSRF header (a page of
/// another site cannot add it). Without either, the key's own error.
pub async fn check_key_or_session(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    write: bool,
) -> Result<(), ApiError> {
    let keyed = check_key(&state.config.api_keys, headers);
    if keyed.is_ok() || headers.contains_key(header::AUTHORIZATION) {
        return keyed;
    }
    let user =
        crate::subsonic::cookie_user(&state.store, state.config.subsonic_secret.as_ref(), headers)
            .await?;
    match user {
        Some(_) if !write => Ok(()),
        Some(user) if user.admin && headers.contains_key(crate::subsonic::CSRF_HEADER) => Ok(()),
        Some(user) if user.admin => Err(ApiError::Unauthorized(
            "a change made with the web player's session must carry its X-Legato-CSRF header",
        )),
        Some(_) => Err(ApiError::Unauthorized(
            "only admins add, edit and delete tracks: sign in as an admin, or send an API key",
        )),
        None => keyed,
    }
}

/// Checks the bearer key in `headers` against `keys` (which must not be empty).
pub fn check_key(keys: &ApiKeys, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        Some(key) if keys.accepts(key) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("the API key is not valid")),
        None => Err(ApiError::Unauthorized(
            "this operation needs an API key: send `Authorization: Bearer <key>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rotating_keys_and_compares_exactly() {
        let keys = ApiKeys::parse("# current\nnew-key\n\n  old-key  \n");
        assert_eq!(keys.len(), 2);
        assert!(keys.accepts("new-key"));
        assert!(keys.accepts("old-key"));
        assert!(!keys.accepts("new-ke"));
        assert!(!keys.accepts("new-key2"));
        assert!(!keys.accepts(""));
        assert!(!format!("{keys:?}").contains("key-"));
    }
}
