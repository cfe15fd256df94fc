//! Connection settings: the database the URI names, the password file, and secrets kept out
//! of everything shown. These need no server: the client connects lazily, so a store made
//! against a closed port exists and answers `Unavailable`.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use legato_store::{Catalog, StoreError};
use legato_store_mongo::{DEFAULT_DATABASE, MongoOptions, MongoStore};

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn quiet() -> MongoOptions {
    MongoOptions {
        gc_on_start: false,
        ..MongoOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_is_the_uri_path_or_openfaas() {
    let port = closed_port();
    let (with_path, without) = (
        format!("mongodb://127.0.0.1:{port}/music"),
        format!("mongodb://127.0.0.1:{port}"),
    );
    let named = MongoStore::connect(&with_path, quiet());
    let default = MongoStore::connect(&without, quiet());
    let overridden = MongoStore::connect(
        &with_path,
        MongoOptions {
            database: Some("other".into()),
            ..quiet()
        },
    );
    let started = Instant::now();
    let (named, default, overridden) = tokio::join!(named, default, overridden);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(named.unwrap().database(), "music");
    assert_eq!(default.unwrap().database(), DEFAULT_DATABASE);
    assert_eq!(overridden.unwrap().database(), "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_never_shown() {
    let port = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mongodb-password");
    std::fs::write(&file, "from-the-secret-file\n").unwrap();
    let options = quiet().with_password_file(&file).unwrap();
    assert_eq!(options.password.as_deref(), Some("from-the-secret-file"));
    assert!(!format!("{options:?}").contains("from-the-secret-file"));

    let spliced = MongoStore::connect(
        &format!("mongodb://legato@127.0.0.1:{port}/openfaas"),
        options,
    )
    .await
    .unwrap();
    let inline = MongoStore::connect(
        &format!("mongodb://legato:in-the-uri@127.0.0.1:{port}/openfaas"),
        quiet(),
    )
    .await
    .unwrap();
    for (store, secret) in [(&spliced, "from-the-secret-file"), (&inline, "in-the-uri")] {
        let shown = format!("{} {store:?}", store.describe());
        assert!(!shown.contains(secret), "{shown}");
        match store.ping().await {
            Err(StoreError::Unavailable(message)) => {
                assert!(!message.contains(secret), "{message}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert!(
        inline.describe().contains("legato:***@"),
        "{}",
        inline.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_needs_a_user() {
    let options = MongoOptions {
        password: Some("hunter2".into()),
        ..quiet()
    };
    match MongoStore::connect("mongodb://127.0.0.1:1/openfaas", options).await {
        Err(StoreError::Invalid(message)) => {
            assert!(message.contains("names no user"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    match MongoStore::connect("postgres://nope", quiet()).await {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("a non-MongoDB URI must be refused: {other:?}"),
    }
}
