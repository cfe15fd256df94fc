//! The web player's sign-in (`/rest/session`): the Subsonic users sign in to the page with
//! their passwords, and the session cookie reads and changes the same per-user state as their
//! apps; without users, a guest browses.

use legato_http::HttpConfig;
use legato_http::auth::ApiKeys;
use legato_http::subsonic::SecretKey;
use serde_json::Value;

use crate::subsonic::{PASSWORD, USER, start_with};
use crate::util::{TestServer, config, song};

const CSRF: &str = "x-legato-csrf";

/// `POST /rest/session` with the page's header: the response.
async fn sign_in(server: &TestServer, name: &str, password: &str) -> reqwest::Response {
    server
        .client
        .post(server.url("/rest/session"))
        .header(CSRF, "1")
        .form(&[("name", name), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// The `name=value` of a `Set-Cookie` header, to send back as `Cookie`.
fn cookie_of(response: &reqwest::Response) -> (String, String) {
    let set = response
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    (pair, set)
}

/// `/rest/<endpoint>?f=json` with the cookie (and the page's header when `csrf`): the
/// `subsonic-response` object.
async fn with_cookie(
    server: &TestServer,
    cookie: Option<&str>,
    csrf: bool,
    endpoint: &str,
    params: &[(&str, &str)],
) -> Value {
    let mut request = server
        .client
        .get(server.url(&format!("/rest/{endpoint}")))
        .query(&[("f", "json"), ("c", "legato-web"), ("v", "1.16.1")])
        .query(params);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if csrf {
        request = request.header(CSRF, "1");
    }
    let body: Value = request.send().await.unwrap().json().await.unwrap();
    body["subsonic-response"].clone()
}

async fn session(server: &TestServer, cookie: Option<&str>) -> Value {
    let mut request = server.client.get(server.url("/rest/session"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap().json().await.unwrap()
}

fn error_code(answer: &Value) -> i64 {
    assert_eq!(answer["status"], "failed", "{answer}");
    answer["error"]["code"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subsonic_user_signs_in_to_the_page_and_shares_its_stars_with_the_apps() {
    let server = start_with(config()).await;
    let track = server.upload(&song(1.0), "Song", "Band").await;
    let id = track["id"].as_str().unwrap();
    assert_eq!(session(&server, None).await["user"], Value::Null);

    // The page's header is required (a form of another site cannot add it).
    let response = server
        .client
        .post(server.url("/rest/session"))
        .form(&[("name", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = sign_in(&server, USER, "wrong").await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let response = sign_in(&server, USER, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let (cookie, set) = cookie_of(&response);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["name"], USER);
    assert_eq!(session(&server, Some(&cookie)).await["user"]["name"], USER);

    // Reads need only the cookie (images load without the header); changes need the header.
    let ping = with_cookie(&server, Some(&cookie), false, "ping", &[]).await;
    assert_eq!(ping["status"], "ok", "{ping}");
    let refused = with_cookie(&server, Some(&cookie), false, "star", &[("id", id)]).await;
    assert_eq!(error_code(&refused), 50);
    let starred = with_cookie(&server, Some(&cookie), true, "star", &[("id", id)]).await;
    assert_eq!(starred["status"], "ok", "{starred}");

    // The app, signed in with the password, sees the page's star.
    let app = with_cookie(
        &server,
        None,
        false,
        "getStarred2",
        &[("u", USER), ("p", PASSWORD)],
    )
    .await;
    assert_eq!(app["starred2"]["song"][0]["id"], id, "{app}");

    // Sign-out clears the cookie; a new password ends the sessions issued under the old one.
    let response = server
        .client
        .delete(server.url("/rest/session"))
        .header(CSRF, "1")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(cookie_of(&response).1.contains("Max-Age=0"));
    let secret = SecretKey::from_bytes([7; 32]);
    server
        .state
        .store
        .set_user_password(USER, secret.seal("a new one"))
        .await
        .unwrap();
    let after = with_cookie(&server, Some(&cookie), false, "ping", &[]).await;
    assert_eq!(error_code(&after), 10, "{after}");
    assert_eq!(session(&server, Some(&cookie)).await["user"], Value::Null);

    // Behind a proxy serving HTTPS, the cookie is Secure.
    let response = server
        .client
        .post(server.url("/rest/session"))
        .header(CSRF, "1")
        .header("x-forwarded-proto", "https")
        .form(&[("name", USER), ("password", "a new one")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(cookie_of(&response).1.contains("; Secure"));
    server.stop().await;
}

// The page's sign-in counts wrong guesses with the apps' limiter, and past it says so with
// 429, not as a wrong password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_guesses_at_the_page_are_slowed_down_like_the_apps() {
    let server = start_with(config()).await;
    for _ in 0..10 {
        assert_eq!(sign_in(&server, USER, "guess").await.status(), 401);
    }
    let response = sign_in(&server, USER, PASSWORD).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too-many-sign-ins");
    server.stop().await;
}

fn without_users(api_keys: &str, private: bool) -> HttpConfig {
    HttpConfig {
        subsonic_secret: Some(SecretKey::from_bytes([7; 32])),
        api_keys: ApiKeys::parse(api_keys),
        private,
        ..config()
    }
}

// Without users the page browses as a guest, as it lists tracks through crud: a guest is no
// user of the store, so it sees no stars and keeps none; a private library has no guest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_users_a_guest_browses_but_keeps_nothing() {
    let server = TestServer::start_with(without_users("", false)).await;
    let track = server.upload(&song(1.0), "Song", "Band").await;
    let id = track["id"].as_str().unwrap();
    assert_eq!(session(&server, None).await["guest"], true);
    let song = with_cookie(&server, None, false, "getSong", &[("id", id)]).await;
    assert_eq!(song["song"]["title"], "Song", "{song}");
    let refused = with_cookie(&server, None, true, "star", &[("id", id)]).await;
    assert_eq!(error_code(&refused), 50);
    let seen = with_cookie(&server, None, false, "getStarred2", &[]).await;
    assert_eq!(seen["status"], "ok", "{seen}");
    assert_eq!(seen["starred2"]["song"], serde_json::json!([]), "{seen}");
    // An app that names a user still signs in as one: no user, code 40.
    let app = with_cookie(&server, None, false, "ping", &[("u", "ana"), ("p", "x")]).await;
    assert_eq!(error_code(&app), 40);
    server.stop().await;

    let server = TestServer::start_with(without_users("a-key", true)).await;
    assert_eq!(session(&server, None).await["guest"], false);
    let refused = with_cookie(&server, None, false, "ping", &[]).await;
    assert_eq!(error_code(&refused), 10);
    server.stop().await;
}

// With API keys, the page's admins add, edit and delete tracks with their session instead of a
// key, and the page's other users only listen; in a private library every signed-in user reads
// the tracks and plays them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_admins_write_with_their_session_and_listeners_only_read() {
    let server = start_with(HttpConfig {
        api_keys: ApiKeys::parse("the-key"),
        private: true,
        ..config()
    })
    .await;
    crate::subsonic::add_user(&server, "bob", "bob-password").await;
    let admin = cookie_of(&sign_in(&server, USER, PASSWORD).await).0;
    let listener = cookie_of(&sign_in(&server, "bob", "bob-password").await).0;
    let post = |cookie: Option<&str>, csrf: bool| {
        let mut request = server
            .client
            .post(server.crud())
            .query(&[("name", "By the page")])
            .header("content-type", "audio/mpeg")
            .body(song(1.0));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie.to_owned());
        }
        if csrf {
            request = request.header(CSRF, "1");
        }
        request.send()
    };
    assert_eq!(post(None, true).await.unwrap().status(), 401);
    assert_eq!(post(Some(&listener), true).await.unwrap().status(), 401);
    assert_eq!(post(Some(&admin), false).await.unwrap().status(), 401);
    let created = post(Some(&admin), true).await.unwrap();
    assert_eq!(created.status(), 201);
    let track: Value = created.json().await.unwrap();
    let id = track["id"].as_str().unwrap();

    // Reading the private library: the listener's session suffices, for crud and streaming.
    let list = |cookie: Option<&str>| {
        let mut request = server.client.get(server.crud());
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie.to_owned());
        }
        request.send()
    };
    assert_eq!(list(None).await.unwrap().status(), 401);
    assert_eq!(list(Some(&listener)).await.unwrap().status(), 200);
    let playlist = server
        .client
        .get(server.url(&format!("/function/streaming/{id}/index.m3u8")))
        .header("cookie", &listener)
        .send()
        .await
        .unwrap();
    assert_eq!(playlist.status(), 200);

    // A session's user is kept in memory for a moment (so that every segment GET does not
    // read it): a removed user is refused within that.
    server.state.store.delete_user("bob").await.unwrap();
    let refused = async {
        loop {
            if list(Some(&listener)).await.unwrap().status() == 401 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(
        legato_http::state::SESSION_TTL + std::time::Duration::from_secs(2),
        refused,
    )
    .await
    .expect("a removed user's session still reads the private library");

    // Deleting is the admin's too.
    let delete = |cookie: &str| {
        server
            .client
            .delete(server.url(&format!("/function/crud/{id}")))
            .header("cookie", cookie.to_owned())
            .header(CSRF, "1")
            .send()
    };
    assert_eq!(delete(&listener).await.unwrap().status(), 401);
    assert_eq!(delete(&admin).await.unwrap().status(), 200);
    server.stop().await;
}

/// Without API keys the crud API is open, as the seed's is; a listener signed in to the page
/// still only listens there.
#[tokio::test]
async fn without_keys_a_signed_in_listener_cannot_change_the_library() {
    let server = start_with(config()).await;
    crate::subsonic::add_user(&server, "bob", "bob-password").await;
    let listener = cookie_of(&sign_in(&server, "bob", "bob-password").await).0;
    let admin = cookie_of(&sign_in(&server, USER, PASSWORD).await).0;
    let post = |cookie: Option<&str>| {
        let mut request = server
            .client
            .post(server.crud())
            .header("content-type", "audio/mpeg")
            .header(CSRF, "1")
            .body(song(1.0));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie.to_owned());
        }
        request.send()
    };
    let refused = post(Some(&listener)).await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only admins"),
        "{body}"
    );
    assert_eq!(post(Some(&admin)).await.unwrap().status(), 201);
    // A script without a cookie (the seed's client) is answered as before (the same song
    // again: its existing track).
    assert_eq!(post(None).await.unwrap().status(), 200);
    // Reading is everyone's.
    let list = server
        .client
        .get(server.crud())
        .header("cookie", &listener)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    server.stop().await;
}
