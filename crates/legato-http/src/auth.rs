//! Who may do what on the crud and streaming routes: writes (and, for a private library,
//! reads) need `Authorization: Bearer <key>` ([`ApiKeys`]) or a web-player session.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

pub use crate::api_keys::ApiKeys;
use crate::error::ApiError;
use crate::state::AppState;

/// What a signed-in listener is told when they try to change the library.
const LISTENERS_READ: &str =
    "only admins add, edit and delete tracks: sign in as an admin, or send an API key";

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
    if keys.is_empty() {
        // Without keys the API is open, as the seed's is; but a listener signed in to the web
        // player is a listener there too: only admins change the library.
        if !is_read
            && let Some(user) = session_user(&state, request.headers()).await?
            && !user.admin
        {
            return Err(ApiError::Unauthorized(LISTENERS_READ));
        }
        return Ok(next.run(request).await);
    }
    if is_read && !state.config.private {
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
    let user = session_user(state, headers).await?;
    match user {
        Some(_) if !write => Ok(()),
        Some(user) if user.admin && headers.contains_key(crate::subsonic::CSRF_HEADER) => Ok(()),
        Some(user) if user.admin => Err(ApiError::Unauthorized(
            "a change made with the web player's session must carry its X-Legato-CSRF header",
        )),
        Some(_) => Err(ApiError::Unauthorized(LISTENERS_READ)),
        None => keyed,
    }
}

/// The user the request's session cookie signs in, through [`AppState::sessions`].
async fn session_user(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<legato_store::User>, ApiError> {
    let cookies: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if cookies.is_empty() {
        return Ok(None);
    }
    let key: std::sync::Arc<str> = cookies.join("; ").into();
    if let Some(known) = state.sessions.get(&key).await {
        return Ok(known);
    }
    let user =
        crate::subsonic::cookie_user(&state.store, state.config.subsonic_secret.as_ref(), headers)
            .await?;
    state.sessions.insert(key, user.clone()).await;
    Ok(user)
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
