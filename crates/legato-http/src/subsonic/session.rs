//! The web player's sign-in: the users who sign in from Subsonic apps sign in to the page with
//! the same name and password, and get a session cookie that `/rest` accepts in place of the
//! `u`/`t`/`s` parameters, so the page reads the same per-user state (stars, ratings, plays,
//! playlists) as the apps.
//!
//! The cookie is sealed with the server's secret key (the one that seals passwords), so any
//! replica of the subsonic function accepts it and no session table is kept. It names the user,
//! its expiry, and a fingerprint of the user's sealed password: a changed password (or a
//! removed user) ends every session of that user. It is `HttpOnly` (scripts never see it),
//! `SameSite=Strict` (other sites' pages never send it), and `Secure` behind a proxy that says
//! it serves HTTPS. What the page changes through the cookie must also carry the
//! [`CSRF_HEADER`], which a page of another origin cannot add without the server's consent
//! (CORS), so no other site can make a signed-in browser store anything.
//!
//! Without users, a library that is not `--private` is open to a guest: the page browses it
//! through `/rest` as it lists tracks through crud. A guest is no user of the store: it sees
//! no stars and keeps none.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use legato_store::{DynStore, StoreError, User};
use sha2::{Digest as _, Sha256};

use super::auth::{self, Blocked};
use super::call::{Api, SignedIn};
use super::error::SubsonicError;
use super::params::Params;
use crate::ApiError;
use crate::secret_key::SecretKey;

/// The cookie's name.
pub const COOKIE: &str = "legato_session";

/// The header the page sends with every request it signs in with the cookie; its value is
/// not checked, its presence is what another site's page cannot forge.
pub const CSRF_HEADER: &str = "x-legato-csrf";

/// How long a session lasts without signing in again.
pub const LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The name a guest is shown under (only while no user exists).
pub const GUEST: &str = "guest";

/// The cookie value for `user`, valid until `expires` (seconds since the epoch).
fn seal(secret: &SecretKey, user: &User, expires: u64) -> String {
    let payload = format!("v1\n{expires}\n{}\n{}", fingerprint(user), user.name);
    URL_SAFE_NO_PAD.encode(secret.seal(&payload))
}

/// The user a cookie value names, if it opens with this key, has not expired, and the user's
/// password is the one it was issued under.
async fn open(
    store: &DynStore,
    secret: &SecretKey,
    value: &str,
    now: u64,
) -> Result<Option<User>, StoreError> {
    let Some(payload) = URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|sealed| secret.open(&sealed))
    else {
        return Ok(None);
    };
    let mut fields = payload.splitn(4, '\n');
    let (Some("v1"), Some(expires), Some(print), Some(name)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Ok(None);
    };
    if expires
        .parse::<u64>()
        .map_or(true, |expires| expires <= now)
    {
        return Ok(None);
    }
    let user = match store.get_user(name).await {
        Ok(user) => user,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok((fingerprint(&user) == print).then_some(user))
}

/// The user signed in by the request's session cookie, if any (for the crud and streaming
/// functions, where the page's admins upload and edit without an API key). `None` on a server
/// without a secret key.
pub async fn cookie_user(
    store: &DynStore,
    secret: Option<&SecretKey>,
    headers: &HeaderMap,
) -> Result<Option<User>, StoreError> {
    match (secret, cookie_value(headers)) {
        (Some(secret), Some(value)) => open(store, secret, value, now_secs()).await,
        _ => Ok(None),
    }
}

/// Changes whenever the user's password is set again.
fn fingerprint(user: &User) -> String {
    hex::encode(&Sha256::digest(&user.sealed_password)[..12])
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The user of a request that carries no `u` and no `apiKey`: the cookie's, else the guest
/// on a server without users; `None` when neither applies (the request then needs
/// credentials, as every Subsonic request does).
pub async fn without_credentials(
    api: &Api,
    headers: &HeaderMap,
) -> Result<Option<(User, SignedIn)>, SubsonicError> {
    if let Some(user) = cookie_user(&api.state.store, Some(&api.secret), headers).await? {
        return Ok(Some((user, SignedIn::Cookie)));
    }
    if guest_allowed(api).await? {
        return Ok(Some((guest(), SignedIn::Guest)));
    }
    Ok(None)
}

/// A guest may browse when no user exists and the library is not private.
async fn guest_allowed(api: &Api) -> Result<bool, SubsonicError> {
    if api.state.config.private {
        return Ok(false);
    }
    Ok(!api.has_users().await?)
}

/// A guest only listens: it is no user of the store, and never an admin.
fn guest() -> User {
    User {
        name: GUEST.to_owned(),
        admin: false,
        sealed_password: Vec::new(),
        created_at: 0,
    }
}

/// Whether a request that stores user state may, signed in as it is: a cookie needs the
/// [`CSRF_HEADER`]; a guest stores nothing (it is no user of the store).
pub fn may_store(how: SignedIn, headers: &HeaderMap) -> Result<(), SubsonicError> {
    match how {
        SignedIn::Credentials => Ok(()),
        SignedIn::Guest => Err(SubsonicError::forbidden(
            "keep stars, ratings, plays or playlists without signing in (add a user with \
             `legato user add`, then sign in)",
        )),
        SignedIn::Cookie if headers.contains_key(CSRF_HEADER) => Ok(()),
        SignedIn::Cookie => Err(SubsonicError::new(
            50,
            format!(
                "A change made with the web player's session must carry the {CSRF_HEADER} \
                 header; Subsonic apps sign in with u and a token, or apiKey."
            ),
        )),
    }
}

/// What `GET /rest/session` and a sign-in answer.
fn describe(user: Option<&User>, guest: bool) -> serde_json::Value {
    serde_json::json!({
        "user": user.map(|u| serde_json::json!({ "name": u.name, "admin": u.admin })),
        "guest": guest,
    })
}

/// `GET /rest/session`: who the page is signed in as (`user`: null when nobody), and whether
/// it may browse as a guest.
pub async fn show(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let found = without_credentials(&api, &headers)
        .await
        .map_err(store_failure)?;
    let body = match &found {
        Some((user, SignedIn::Cookie)) => describe(Some(user), false),
        Some((_, _)) => describe(None, true),
        None => describe(None, false),
    };
    Ok(no_store(Json(body).into_response()))
}

/// `POST /rest/session` with a form `name=…&password=…`: signs in and sets the cookie.
/// Wrong guesses count against the same per-account and per-address limits as the apps'.
pub async fn sign_in(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    connect: Option<axum::extract::Extension<ConnectInfo<SocketAddr>>>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    require_csrf_header(&headers)?;
    let body = crate::upload::read_small_body(body, None, 16 * 1024, &api.state.config).await?;
    let form = Params::parse(None, &body);
    let name = form
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or(ApiError::MissingField("name"))?;
    let password = form
        .get("password")
        .ok_or(ApiError::MissingField("password"))?;
    let client = super::params::client_address(
        &headers,
        connect.map(|c| c.0.0),
        &api.state.config.trusted_proxies,
    );
    if let Some(Blocked { wait, account }) = api.failures.blocked(client, Some(name)) {
        let whose = if account {
            "for this account"
        } else {
            "from this address"
        };
        return Err(ApiError::TooManySignIns { whose, wait });
    }
    let user = match auth::check_password(&api.state.store, &api.secret, name, password).await {
        Ok(user) => user,
        Err(error) if error.code == 40 => {
            api.failures.failed(client, Some(name));
            return Err(ApiError::Unauthorized(
                "wrong user name or password (the names and passwords of Subsonic apps)",
            ));
        }
        Err(error) => return Err(store_failure(error)),
    };
    let expires = now_secs() + LIFETIME.as_secs();
    let cookie = format!(
        "{COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        seal(&api.secret, &user, expires),
        LIFETIME.as_secs(),
        secure_attribute(&headers)
    );
    let mut response = Json(describe(Some(&user), false)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(no_store(response))
}

/// `DELETE /rest/session`: signs out (the browser forgets the cookie).
pub async fn sign_out(headers: HeaderMap) -> Result<Response, ApiError> {
    require_csrf_header(&headers)?;
    let cookie = format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        secure_attribute(&headers)
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(no_store(response))
}

fn require_csrf_header(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key(CSRF_HEADER) {
        Ok(())
    } else {
        Err(ApiError::InvalidParameter(format!(
            "the web player's sign-in and sign-out must carry the {CSRF_HEADER} header"
        )))
    }
}

/// `; Secure` when a proxy in front says the page is served over HTTPS (Legato itself
/// speaks plain HTTP; over plain HTTP a `Secure` cookie would never come back).
fn secure_attribute(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    if https { "; Secure" } else { "" }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn store_failure(error: SubsonicError) -> ApiError {
    ApiError::Store(StoreError::Unavailable(error.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; legato_session=abc; b=2"),
        );
        assert_eq!(cookie_value(&headers), Some("abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("legato_sessionx=1"),
        );
        assert_eq!(cookie_value(&headers), None);
    }

    #[test]
    fn a_new_password_changes_the_fingerprint() {
        let key = SecretKey::from_bytes([7; 32]);
        let mut user = User {
            name: "ana".into(),
            admin: false,
            sealed_password: key.seal("first"),
            created_at: 0,
        };
        let before = fingerprint(&user);
        user.sealed_password = key.seal("second");
        assert_ne!(before, fingerprint(&user));
    }
}
