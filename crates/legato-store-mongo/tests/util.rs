//! What the tests share: the server under test, fresh databases, a FerretDB of one's own.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use legato_store::DynStore;
use legato_store_mongo::{MongoOptions, MongoStore};
use mongodb::Client;
use mongodb::bson::Document;

pub const URI_VAR: &str = "LEGATO_TEST_MONGODB_URI";

/// The server under test; failing (not skipping) when none is configured.
pub fn test_uri() -> String {
    match std::env::var(URI_VAR) {
        Ok(uri) if !uri.trim().is_empty() => uri,
        _ => panic!(
            "{URI_VAR} is not set: these tests need a MongoDB-protocol server. Start one with \
             `scripts/ferretdb.sh start 27017 /tmp/legato-ferretdb` (it prints the URI) and run \
             `{URI_VAR}=mongodb://127.0.0.1:27017/ cargo test -p legato-store-mongo`"
        ),
    }
}

/// A database name no other test (or earlier run) uses.
pub fn unique_database(purpose: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "legato_{purpose}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn options_for(database: &str) -> MongoOptions {
    MongoOptions {
        database: Some(database.to_owned()),
        ..MongoOptions::default()
    }
}

pub async fn fresh_mongo(purpose: &str) -> MongoStore {
    let database = unique_database(purpose);
    MongoStore::connect(&test_uri(), options_for(&database))
        .await
        .unwrap()
}

pub async fn fresh_store() -> DynStore {
    Arc::new(fresh_mongo("story").await)
}

/// The plain driver, as the seed's functions use it.
pub async fn plain(uri: &str, database: &str) -> mongodb::Database {
    Client::with_uri_str(uri).await.unwrap().database(database)
}

pub fn plain_collection(db: &mongodb::Database, name: &str) -> mongodb::Collection<Document> {
    db.collection(name)
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ferretdb.sh")
}

fn run_script(args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("run scripts/ferretdb.sh");
    assert!(
        output.status.success(),
        "scripts/ferretdb.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A FerretDB of the test's own, on its own port and data folder; stopped when dropped.
pub struct Ferret {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub uri: String,
}

impl Ferret {
    pub fn start_new() -> Self {
        let port: u16 = run_script(&["free-port"]).parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let uri = run_script(&["start", &port.to_string(), dir.path().to_str().unwrap()]);
        Self { port, dir, uri }
    }

    /// Starts it again on the same port and data folder.
    pub fn start(&self) {
        let uri = run_script(&[
            "start",
            &self.port.to_string(),
            self.dir.path().to_str().unwrap(),
        ]);
        assert_eq!(uri, self.uri);
    }

    pub fn stop(&self) {
        run_script(&["stop", self.dir.path().to_str().unwrap()]);
    }
}

impl Drop for Ferret {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", self.dir.path().to_str().unwrap_or_default()])
            .output();
    }
}
